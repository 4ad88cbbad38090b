"""A local Resource Manager v3 API: organizations, nested folders and projects, and the three
methods remediate lists projects with (`projects.list`, `projects.search`, `folders.list`),
served by the local Compute server under `/v3/`.

Routes, query parameters and bodies come from the `cloudresourcemanager.v3` discovery document
that google-api-python-client ships: an unknown query parameter, a malformed boolean or integer,
or a missing parameter the document calls "Required" is refused with 400, and every answer is
checked against the method's response schema (field names, the `state` enums). As the real API
does:

- `projects.list` and `folders.list` return the direct children of one parent, sorted by display
  name, without DELETE_REQUESTED ones unless `showDeleted` is true; a parent that does not exist
  (or that the caller may not see) is 403 PERMISSION_DENIED, not 404;
- `projects.search` returns projects in no particular order, in any state, filtered by its
  `query` (`field:value` terms from the method's own table, a trailing `*` for a prefix; several
  terms match when any of them does, as the document says);
- results come in pages: without `pageSize` the server picks a small one, so every client must
  follow `nextPageToken`; a token only continues the request it came from;
- with `$alt=json;enum-encoding=int` (what the generated REST clients send) enums are numbers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from remediate.sandbox.googleapi import ApiError, discovery, validate

DOCUMENT = "cloudresourcemanager.v3"
SERVICE_PATH = "/v3/"
# Methods served (the others of the document answer 404, as a path the server does not know).
METHODS = frozenset({("projects", "list"), ("projects", "search"), ("folders", "list")})
DEFAULT_PAGE_SIZE = 2
""""If unspecified, server picks an appropriate default": small, so a client that ignores
`nextPageToken` misses projects."""
MAX_PAGE_SIZE = 500
"""A larger pageSize is accepted and answered with fewer (the document allows it)."""
PROJECT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
# `projects.search` query fields (the method's own table) -> how a project is matched.
SEARCH_FIELDS = {
    "displayname": "displayName",
    "name": "displayName",
    "parent": "parent",
    "parent.type": "parent.type",
    "parent.id": "parent.id",
    "id": "projectId",
    "projectid": "projectId",
    "state": "state",
    "lifecyclestate": "state",
    "labels": "labels",
}
TIMESTAMP = "2026-01-05T10:00:00.000Z"
FIRST_NUMBER = 100_000_000_001
"""Organizations, folders and projects are numbered from here, in the order they are made."""


class RmError(ApiError):
    """An error in the v3 APIs' shape: code, message and canonical status."""

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": self.message, "status": self.canonical}}


def _invalid(message: str = "Request contains an invalid argument.") -> RmError:
    return RmError(400, message, "badRequest", canonical="INVALID_ARGUMENT")


def _denied() -> RmError:
    # The real API does not tell a missing resource from one the caller may not see.
    return RmError(
        403, "The caller does not have permission", "forbidden", canonical="PERMISSION_DENIED"
    )


@dataclass(frozen=True)
class Route:
    resource: str
    method: str
    http_method: str
    pattern: re.Pattern[str]
    parameters: Mapping[str, Mapping[str, Any]]
    """Every query and path parameter of the method, as the document describes it."""
    response: str

    def required(self) -> list[str]:
        """Query parameters the document marks required, or describes as "Required."."""
        return [
            name
            for name, spec in self.parameters.items()
            if spec["location"] == "query"
            and (spec.get("required") or str(spec.get("description", "")).startswith("Required."))
        ]


@cache
def routes() -> tuple[Route, ...]:
    document = discovery(DOCUMENT)
    found = []
    for resource, method in sorted(METHODS):
        spec = document["resources"][resource]["methods"][method]
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", spec["flatPath"].removeprefix("v3/"))
        found.append(
            Route(
                resource=resource,
                method=method,
                http_method=spec["httpMethod"],
                pattern=re.compile(f"^{regex}$"),
                parameters=spec.get("parameters", {}),
                response=spec["response"]["$ref"],
            )
        )
    return tuple(found)


@cache
def _enum_fields(schema: str) -> dict[str, list[str]]:
    """Each enum field of `schema` and its values, in the document's (the proto's) order."""
    properties = discovery(DOCUMENT)["schemas"][schema]["properties"]
    return {name: spec["enum"] for name, spec in properties.items() if "enum" in spec}


def _int_enums(schema: str, item: dict[str, Any]) -> dict[str, Any]:
    """`item` with its enums as numbers, as `enum-encoding=int` asks (the document lists each
    enum's values in the order of their numbers, from 0)."""
    for name, values in _enum_fields(schema).items():
        if name in item:
            item[name] = values.index(item[name])
    return item


@dataclass
class State:
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By project id."""


class ResourceManager:
    """The state and the methods; `ComputeServer` serves them."""

    def __init__(self) -> None:
        self._state = State()
        self._numbers = itertools.count(FIRST_NUMBER)
        self._lock = threading.RLock()

    def reset(self) -> None:
        """Empty, numbering from the start again (a seed gets the same numbers every time)."""
        with self._lock:
            self._state = State()
            self._numbers = itertools.count(FIRST_NUMBER)

    # -- seeding (the demo and tests) --

    def organization(self, display_name: str) -> str:
        """A new organization; returns its name (`organizations/N`)."""
        with self._lock:
            name = f"organizations/{next(self._numbers)}"
            self._state.organizations[name] = self._stored(
                "Organization",
                {"name": name, "displayName": display_name, "state": "ACTIVE"},
            )
            return name

    def folder(self, parent: str, display_name: str, state: str = "ACTIVE") -> str:
        """A folder under an organization or a folder; returns its name (`folders/N`)."""
        with self._lock:
            self._check_parent(parent)
            name = f"folders/{next(self._numbers)}"
            body = {"name": name, "parent": parent, "displayName": display_name, "state": state}
            self._state.folders[name] = self._stored("Folder", body)
            return name

    def project(
        self,
        project_id: str,
        parent: str,
        state: str = "ACTIVE",
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A project under an organization or a folder; returns its name (`projects/NUMBER`)."""
        if not PROJECT_ID.match(project_id):
            raise ValueError(f"{project_id!r} is not a project id")
        with self._lock:
            if project_id in self._state.projects:
                raise ValueError(f"project {project_id} already exists")
            self._check_parent(parent)
            name = f"projects/{next(self._numbers)}"
            body: dict[str, Any] = {
                "name": name,
                "projectId": project_id,
                "parent": parent,
                "displayName": project_id,
                "state": state,
                "labels": dict(labels or {}),
            }
            self._state.projects[project_id] = self._stored("Project", body)
            return name

    def number(self, project_id: str) -> str | None:
        """The project number of a project id, None for a project it does not hold."""
        with self._lock:
            found = self._state.projects.get(project_id)
        return str(found["name"]).removeprefix("projects/") if found else None

    def _check_parent(self, parent: str) -> None:
        if parent not in self._state.organizations and parent not in self._state.folders:
            raise ValueError(f"no parent {parent}")

    @staticmethod
    def _stored(schema: str, body: dict[str, Any]) -> dict[str, Any]:
        item = {**body, "createTime": TIMESTAMP, "updateTime": TIMESTAMP}
        item["etag"] = base64.b64encode(hashlib.sha256(repr(body).encode()).digest()[:9]).decode()
        if item.get("state") == "DELETE_REQUESTED":
            item["deleteTime"] = TIMESTAMP
        validate(schema, item, DOCUMENT)
        return item

    # -- the API --

    def handle(
        self, http_method: str, path: str, query: Mapping[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        relative = path.removeprefix(SERVICE_PATH)
        for route in routes():
            match = route.pattern.match(relative)
            if match is None or route.http_method != http_method:
                continue
            params = self._parameters(route, query)
            with self._lock:
                method = getattr(self, f"_{route.resource}_{route.method}")
                result = method(match.groupdict(), params)
            validate(route.response, result, DOCUMENT)
            if "enum-encoding=int" in query.get("$alt", [""])[0]:
                result = self._numbered(route.response, result)
            return 200, result
        raise RmError(404, f"no such API path: {path}", "notFound", canonical="NOT_FOUND")

    @staticmethod
    def _parameters(route: Route, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """The query as typed values; 400 for what the document does not allow."""
        known = discovery(DOCUMENT)["parameters"]
        values: dict[str, Any] = {}
        for name, given in query.items():
            if name == "$alt":
                continue
            spec = route.parameters.get(name) or known.get(name)
            if spec is None or spec.get("location") != "query":
                raise _invalid(
                    f'Invalid JSON payload received. Unknown name "{name}": '
                    "Cannot bind query parameter."
                )
            text = given[-1]
            if spec.get("type") == "boolean":
                if text not in ("true", "false"):
                    raise _invalid(f"Invalid value at '{name}' (TYPE_BOOL), \"{text}\"")
                values[name] = text == "true"
            elif spec.get("type") == "integer":
                try:
                    values[name] = int(text)
                except ValueError:
                    raise _invalid(f"Invalid value at '{name}' (TYPE_INT32), \"{text}\"") from None
            else:
                values[name] = text
        for name in route.required():
            if not values.get(name):
                raise _invalid(f"{name} is required")
        return values

    @staticmethod
    def _numbered(schema: str, result: dict[str, Any]) -> dict[str, Any]:
        properties = discovery(DOCUMENT)["schemas"][schema]["properties"]
        for name, spec in properties.items():
            ref = spec.get("items", {}).get("$ref")
            if ref and name in result:
                result[name] = [_int_enums(ref, item) for item in result[name]]
        return _int_enums(schema, result)

    def _page(
        self, items: list[dict[str, Any]], params: Mapping[str, Any], key: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of `items` and the token of the next; `key` binds a token to its request."""
        size = params.get("pageSize", 0)
        if size < 0:
            raise _invalid("page_size must not be negative")
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        start = 0
        token = params.get("pageToken")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = int(decoded["offset"])
                valid = decoded["request"] == key and 0 <= start <= len(items)
            except (ValueError, KeyError, TypeError):
                valid = False
            if not valid:
                raise _invalid("Invalid page token.")
        page = [copy.deepcopy(item) for item in items[start : start + size]]
        if start + size >= len(items):
            return page, None
        next_token = json.dumps({"offset": start + size, "request": key})
        return page, base64.urlsafe_b64encode(next_token.encode()).decode()

    def _parent(self, params: Mapping[str, Any]) -> str:
        parent = str(params["parent"])
        if not re.match(r"^(organizations|folders)/[0-9]+$", parent):
            raise _invalid(f"Invalid parent: {parent!r}")
        known = self._state.organizations.get(parent) or self._state.folders.get(parent)
        if known is None or known["state"] != "ACTIVE":
            raise _denied()
        return parent

    @staticmethod
    def _request_key(method: str, params: Mapping[str, Any]) -> str:
        kept = {k: v for k, v in params.items() if k not in ("pageToken", "pageSize")}
        return hashlib.sha256(f"{method} {sorted(kept.items())}".encode()).hexdigest()[:16]

    def _listing(
        self, method: str, items: list[dict[str, Any]], params: Mapping[str, Any], what: str
    ) -> dict[str, Any]:
        page, token = self._page(items, params, self._request_key(method, params))
        result: dict[str, Any] = {}
        if page:
            result[what] = page
        if token:
            result["nextPageToken"] = token
        return result

    def _projects_list(self, path: Mapping[str, str], params: Mapping[str, Any]) -> dict[str, Any]:
        parent = self._parent(params)
        shown = ("ACTIVE", "DELETE_REQUESTED") if params.get("showDeleted") else ("ACTIVE",)
        items = sorted(
            (p for p in self._state.projects.values() if p["parent"] == parent),
            key=lambda p: (p["displayName"], p["name"]),
        )
        items = [p for p in items if p["state"] in shown]
        return self._listing("projects.list", items, params, "projects")

    def _folders_list(self, path: Mapping[str, str], params: Mapping[str, Any]) -> dict[str, Any]:
        parent = self._parent(params)
        shown = ("ACTIVE", "DELETE_REQUESTED") if params.get("showDeleted") else ("ACTIVE",)
        items = sorted(
            (f for f in self._state.folders.values() if f["parent"] == parent),
            key=lambda f: (f["displayName"], f["name"]),
        )
        items = [f for f in items if f["state"] in shown]
        return self._listing("folders.list", items, params, "folders")

    def _projects_search(
        self, path: Mapping[str, str], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        terms = _parse_query(str(params.get("query", "")))
        # "In an unspecified order": newest first here, so a client must not rely on any.
        items = sorted(self._state.projects.values(), key=lambda p: p["name"], reverse=True)
        items = [p for p in items if not terms or any(_matches(p, *term) for term in terms)]
        return self._listing("projects.search", items, params, "projects")


def _parse_query(query: str) -> list[tuple[str, str | None, str]]:
    """`field:value` terms as (field, label key, value); 400 for a field outside the table."""
    terms: list[tuple[str, str | None, str]] = []
    for term in query.split():
        name, colon, value = term.partition(":")
        if not colon or not value:
            raise _invalid(f"Invalid query: {term!r} (expected field:value)")
        lowered = name.lower()
        if lowered.startswith("labels."):
            terms.append(("labels", name[len("labels.") :], value))
            continue
        if lowered not in SEARCH_FIELDS:
            raise _invalid(f"Invalid query: unknown field {name!r}")
        terms.append((SEARCH_FIELDS[lowered], None, value))
    return terms


def _matches(project: Mapping[str, Any], name: str, label: str | None, value: str) -> bool:
    """Case-insensitive; `*` alone: the field is there; a trailing `*`: a prefix."""
    parent = str(project.get("parent", ""))
    labels: Mapping[str, str] = project.get("labels", {})
    if name == "labels":
        candidates = [labels[label]] if label is not None and label in labels else []
        if label is None:
            candidates = [*labels.keys(), *labels.values()]
        elif label in labels and value == "*":
            return True
    elif name == "parent.type":
        candidates = [parent.split("/", 1)[0].removesuffix("s")]
    elif name == "parent.id":
        candidates = [parent.partition("/")[2]]
    else:
        candidates = [str(project.get(name, ""))]
    wanted = value.lower()
    if wanted.endswith("*"):
        return any(c.lower().startswith(wanted[:-1]) for c in candidates if c)
    return any(c.lower() == wanted for c in candidates if c)
