"""The GCP provider's policy section, resource kinds and typed change target."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from remediate.policy import Section
from remediate.targets import Target

# A project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter, with an
# optional domain prefix for the older domain-scoped projects (example.com:project).
PROJECT_ID = r"^(?:[a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$"


class GCPSettings(Section):
    projects: list[Annotated[str, StringConstraints(pattern=PROJECT_ID)]] = Field(
        default_factory=list
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
