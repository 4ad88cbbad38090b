"""The GCP provider's policy section, resource kinds and typed change target."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from remediate.policy import Section
from remediate.targets import Target

# A project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter, with an
# optional domain prefix for the older domain-scoped projects (example.com:project).
PROJECT_ID = r"^(?:[a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$"
GLOB_CHARACTERS = frozenset("*?[")
# A glob over project ids (fnmatch: `*`, `?`, `[...]`, `[!...]`): the characters of an id and those.
PROJECT_GLOB = re.compile(r"^[-a-z0-9.:*?\[\]!]{1,64}$")


def is_glob(value: str) -> bool:
    return bool(GLOB_CHARACTERS.intersection(value))


def _check_project(value: str) -> str:
    if is_glob(value):
        if not PROJECT_GLOB.match(value):
            raise ValueError(
                f"{value!r} is not a glob over project ids (lowercase letters, digits, -, and "
                "the wildcards * ? [...])"
            )
    elif not re.match(PROJECT_ID, value):
        raise ValueError(
            f"{value!r} is not a project id (6 to 30 lowercase letters, digits and hyphens, "
            "starting with a letter) nor a glob"
        )
    return value


def _number_text(value: object) -> object:
    # YAML reads an unquoted organization or folder number as an integer.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _resource_name(kind: str) -> AfterValidator:
    """`kind/NUMBER` from `kind/NUMBER` or a bare NUMBER; anything else is refused."""
    pattern = re.compile(rf"^(?:{kind}/)?([0-9]{{1,20}})$")

    def check(value: str) -> str:
        found = pattern.match(value.strip())
        if found is None:
            raise ValueError(f"{value!r} is not {kind}/NUMBER or a bare NUMBER")
        return f"{kind}/{found.group(1)}"

    return AfterValidator(check)


Project = Annotated[str, AfterValidator(_check_project)]
OrganizationName = Annotated[str, BeforeValidator(_number_text), _resource_name("organizations")]
FolderName = Annotated[str, BeforeValidator(_number_text), _resource_name("folders")]


class GCPSettings(Section):
    projects: list[Project] = Field(
        default_factory=list,
        description="Project ids, or globs over the ids of every project the credentials can "
        "see (Resource Manager projects.search), such as web-*.",
    )
    organization: OrganizationName | None = Field(
        default=None,
        description="organizations/NUMBER (or the bare number): its ACTIVE projects, in "
        "nested folders too.",
    )
    folders: list[FolderName] = Field(
        default_factory=list,
        description="folders/NUMBER (or bare numbers): their ACTIVE projects, in nested folders "
        "too.",
    )
    exclude: list[Project] = Field(
        default_factory=list,
        description="Project ids or globs left out of whatever the other settings list.",
    )
    ssl_policy_name: str = Field(
        default="remediate-tls", pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
    )
    profile: Literal["MODERN", "RESTRICTED"] = Field(
        default="MODERN",
        description="The profile of remediate's SSL policies; a tls.minimum of 1.3 forces "
        "RESTRICTED (the API accepts TLS_1_3 with no other profile).",
    )
    post_quantum_key_exchange: Literal["DEFAULT", "ENABLED", "DEFERRED"] | None = Field(
        default=None,
        description="postQuantumKeyExchange of remediate's SSL policies (X25519MLKEM768); "
        "unset leaves the API's choice alone.",
    )
    endpoint: str | None = Field(
        default=None, description="Another Compute endpoint (emulator, Private Service Connect)."
    )
    resource_manager_endpoint: str | None = Field(
        default=None,
        description="Another Resource Manager endpoint (emulator, Private Service Connect), for "
        "organization, folders and globs.",
    )

    def listed(self) -> bool:
        """Whether the projects come (in part) from the Resource Manager API."""
        return bool(self.organization or self.folders or any(map(is_glob, self.projects)))


class Kind(StrEnum):
    TARGET_HTTPS_PROXY = "target-https-proxy"
    TARGET_SSL_PROXY = "target-ssl-proxy"
    SSL_POLICY = "ssl-policy"
    BACKEND_SERVICE = "backend-service"


class ComputeTarget(Target):
    """A Compute resource: its selfLink, the fingerprint the API gave it when it was read (a
    regional PATCH must carry it) and, for a proxy, its URL map."""

    type: str = "gcp-compute"
    link: str
    api_fingerprint: str | None = None
    url_map: str | None = None
