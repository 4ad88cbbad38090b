"""A local Compute Engine REST server: the subset of compute v1 that remediate uses, on loopback.

It speaks the real wire format, so `google-cloud-compute` (REST transport) reaches it exactly as it
reaches Google, through `client_options.api_endpoint`. Routes and request bodies come from the
`compute.v1` discovery document that `google-api-python-client` ships: a body with an unknown
field, a wrong type or a value outside an enum is rejected with 400, as the real API does.
Writes return Operations that reach DONE after a few polls (the change lands then), lists page
with `maxResults`/`pageToken`, aggregated lists warn on empty scopes, and PATCH enforces
fingerprints (412 on a stale one). The demo and tests seed state directly; tests alone also edit
resources out of band and inject failing operations, through `ComputeServer.test_hooks`.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from remediate.sandbox.googleapi import ApiError, discovery, service_disabled, validate
from remediate.sandbox.resourcemanager import SERVICE_PATH as RESOURCE_MANAGER_PATH
from remediate.sandbox.resourcemanager import ResourceManager

GOOGLE_BASE = "https://www.googleapis.com/compute/v1/"
SERVICE_PATH = "/compute/v1/"
# Regions an aggregated list reports (with a NO_RESULTS_ON_PAGE warning when empty), besides any
# region that holds seeded resources.
DEFAULT_REGIONS = ("asia-east1", "europe-west1", "us-central1", "us-east1")
MAX_RESULTS = 500
# Query parameters the REST transport adds that the discovery document does not list.
TRANSPORT_PARAMETERS = frozenset({"$alt"})

# Discovery resource -> (collection in URLs, scope of its paths).
RESOURCES: dict[str, tuple[str, str]] = {
    "targetHttpsProxies": ("targetHttpsProxies", "global"),
    "regionTargetHttpsProxies": ("targetHttpsProxies", "region"),
    "targetSslProxies": ("targetSslProxies", "global"),
    "sslPolicies": ("sslPolicies", "global"),
    "regionSslPolicies": ("sslPolicies", "region"),
    "urlMaps": ("urlMaps", "global"),
    "regionUrlMaps": ("urlMaps", "region"),
    "backendServices": ("backendServices", "global"),
    "regionBackendServices": ("backendServices", "region"),
    "globalOperations": ("operations", "global"),
    "regionOperations": ("operations", "region"),
}
METHODS = frozenset(
    {"aggregatedList", "list", "get", "insert", "patch", "delete", "setSslPolicy", "wait"}
)
# The resource schema of each collection, and the fields a new resource gets by default.
SCHEMAS = {
    "targetHttpsProxies": "TargetHttpsProxy",
    "targetSslProxies": "TargetSslProxy",
    "sslPolicies": "SslPolicy",
    "urlMaps": "UrlMap",
    "backendServices": "BackendService",
}
KINDS = {
    "targetHttpsProxies": "compute#targetHttpsProxy",
    "targetSslProxies": "compute#targetSslProxy",
    "sslPolicies": "compute#sslPolicy",
    "urlMaps": "compute#urlMap",
    "backendServices": "compute#backendService",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "targetHttpsProxies": {"quicOverride": "NONE", "tlsEarlyData": "DISABLED"},
    "targetSslProxies": {"proxyHeader": "NONE"},
    "sslPolicies": {"profile": "COMPATIBLE", "minTlsVersion": "TLS_1_0"},
    "urlMaps": {},
    "backendServices": {
        "protocol": "HTTP",
        "timeoutSec": 30,
        "port": 80,
        "portName": "http",
        "loadBalancingScheme": "EXTERNAL_MANAGED",
    },
}
# Fields a client may not set: the server owns them.
OUTPUT_ONLY = frozenset({"id", "kind", "selfLink", "creationTimestamp", "region", "fingerprint"})
# Reference fields whose targets must exist, and in the referring resource's own scope.
REFERENCES = {
    ("targetHttpsProxies", "sslPolicy"): "sslPolicies",
    ("targetSslProxies", "sslPolicy"): "sslPolicies",
}
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def _not_found(link: str) -> ApiError:
    return ApiError(
        404, f"The resource '{link.removeprefix(GOOGLE_BASE)}' was not found", "notFound"
    )


@dataclass(frozen=True)
class Route:
    resource: str
    method: str
    http_method: str
    pattern: re.Pattern[str]
    parameters: frozenset[str]
    request: str | None
    response: str | None

    @property
    def collection(self) -> str:
        return RESOURCES[self.resource][0]


@cache
def routes() -> tuple[Route, ...]:
    document = discovery()
    found: list[Route] = []
    for resource in RESOURCES:
        for method, spec in document["resources"][resource]["methods"].items():
            if method not in METHODS:
                continue
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", spec["path"])
            query = {k for k, v in spec.get("parameters", {}).items() if v["location"] == "query"}
            found.append(
                Route(
                    resource=resource,
                    method=method,
                    http_method=spec["httpMethod"],
                    pattern=re.compile(f"^{regex}$"),
                    parameters=frozenset(query | set(document["parameters"])),
                    request=spec.get("request", {}).get("$ref"),
                    response=spec.get("response", {}).get("$ref"),
                )
            )
    return tuple(found)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _fingerprint() -> str:
    return base64.b64encode(os.urandom(8)).decode()


def _scope(region: str | None) -> str:
    return f"regions/{region}" if region else "global"


def link(project: str, collection: str, name: str, region: str | None = None) -> str:
    """The selfLink of a resource: always Google's host, whatever endpoint served it."""
    return f"{GOOGLE_BASE}projects/{project}/{_scope(region)}/{collection}/{name}"


def canonical(reference: str) -> str:
    """A full or partial resource URL as the selfLink form the server stores."""
    path = reference
    for prefix in (GOOGLE_BASE, "https://compute.googleapis.com/compute/v1/"):
        path = path.removeprefix(prefix)
    return GOOGLE_BASE + path.lstrip("/")


@dataclass
class Operation:
    body: dict[str, Any]
    apply: Callable[[], None]
    polls_left: int
    failure: tuple[int, str, str] | None = None


@dataclass
class Failure:
    """An injected failure: the next operation on `target` finishes with this error."""

    target: str
    code: str
    message: str
    status: int = 400


@dataclass
class State:
    projects: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)
    """Projects where the Compute API is not enabled: every call answers 403 SERVICE_DISABLED."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


class TestHooks:
    """What only tests do to the server: edit a resource behind remediate's back, make an
    operation fail. Neither the demo nor the library calls these."""

    __test__ = False  # not a pytest test class

    def __init__(self, server: ComputeServer) -> None:
        self._server = server

    def touch(self, self_link: str, **fields: Any) -> None:
        """Change a resource out of band (someone in the console): new fields, new fingerprint."""
        with self._server._lock:
            item = self._server._state.items[canonical(self_link)]
            item.update(fields)
            if "fingerprint" in item:
                item["fingerprint"] = _fingerprint()

    def fail_next(self, target: str, message: str, code: str = "RESOURCE_NOT_READY") -> None:
        """Make the next operation on `target` (a selfLink) finish with an error."""
        with self._server._lock:
            self._server._state.failures.append(Failure(canonical(target), code, message))


class ComputeServer:
    """The local Compute API on a free 127.0.0.1 port, served from threads of this process.

    `operation_polls` is how many `get`/`wait` calls an operation needs before it reports DONE.
    """

    def __init__(self, operation_polls: int = 2) -> None:
        self.operation_polls = operation_polls
        self.requests: list[tuple[str, str, int]] = []
        self._state = State()
        self.resource_manager = ResourceManager()
        """The Resource Manager v3 API this server also serves (under `/v3/`)."""
        self._lock = threading.RLock()
        self._ids = itertools.count(1_000_000_000_000)
        handler = type("Handler", (_Handler,), {"server_api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self.test_hooks = TestHooks(self)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self._state = State()
            self.resource_manager.reset()
            self.requests.clear()

    # -- seeding and inspection (what a test or the demo uses directly) --

    def add_project(self, project: str) -> None:
        with self._lock:
            self._state.projects.add(project)

    def disable_compute(self, project: str) -> None:
        """Turn the Compute API off in `project`, as a project that never enabled it."""
        with self._lock:
            self._state.projects.add(project)
            self._state.disabled.add(project)

    def seed(
        self, project: str, collection: str, body: Mapping[str, Any], region: str | None = None
    ) -> str:
        """Create a resource as if it had been inserted long ago; returns its selfLink."""
        resource = dict(body)
        validate(SCHEMAS[collection], resource)
        with self._lock:
            self._state.projects.add(project)
            self._check_references(project, collection, resource, region)
            return self._store(project, collection, resource, region)

    def ssl_policy(
        self,
        project: str,
        name: str,
        min_tls_version: str = "TLS_1_0",
        profile: str = "COMPATIBLE",
        region: str | None = None,
    ) -> str:
        body = {"name": name, "minTlsVersion": min_tls_version, "profile": profile}
        return self.seed(project, "sslPolicies", body, region)

    def backend_service(
        self,
        project: str,
        name: str,
        protocol: str = "HTTP",
        timeout_sec: int = 30,
        region: str | None = None,
    ) -> str:
        body = {"name": name, "protocol": protocol, "timeoutSec": timeout_sec}
        return self.seed(project, "backendServices", body, region)

    def url_map(
        self, project: str, name: str, default_service: str, region: str | None = None, **extra: Any
    ) -> str:
        body = {"name": name, "defaultService": default_service, **extra}
        return self.seed(project, "urlMaps", body, region)

    def https_proxy(
        self,
        project: str,
        name: str,
        url_map: str,
        ssl_policy: str | None = None,
        region: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"name": name, "urlMap": url_map}
        if ssl_policy is not None:
            body["sslPolicy"] = ssl_policy
        return self.seed(project, "targetHttpsProxies", body, region)

    def ssl_proxy(
        self, project: str, name: str, service: str, ssl_policy: str | None = None
    ) -> str:
        """A global target SSL proxy (SSL proxy load balancer) in front of `service`."""
        body: dict[str, Any] = {"name": name, "service": service}
        if ssl_policy is not None:
            body["sslPolicy"] = ssl_policy
        return self.seed(project, "targetSslProxies", body)

    def get(self, self_link: str) -> dict[str, Any]:
        """A copy of a stored resource, as the API would return it."""
        with self._lock:
            try:
                return copy.deepcopy(self._state.items[canonical(self_link)])
            except KeyError:
                raise _not_found(self_link) from None

    def links(self) -> list[str]:
        """Every stored selfLink."""
        with self._lock:
            return sorted(self._state.items)

    # -- the API --

    def handle(
        self, http_method: str, path: str, query: Mapping[str, list[str]], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        try:
            if path.startswith(RESOURCE_MANAGER_PATH):
                status, body = self.resource_manager.handle(http_method, path, query)
            else:
                status, body = self._dispatch(http_method, path, query, raw)
        except ApiError as exc:
            status, body = exc.status, exc.body()
        with self._lock:
            self.requests.append((http_method, path, status))
        return status, body

    def _dispatch(
        self, http_method: str, path: str, query: Mapping[str, list[str]], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        if not path.startswith(SERVICE_PATH):
            raise ApiError(404, f"no such API path: {path}", "notFound")
        relative = path.removeprefix(SERVICE_PATH)
        for route in routes():
            match = route.pattern.match(relative)
            if match is None or route.http_method != http_method:
                continue
            unknown = sorted(set(query) - route.parameters - TRANSPORT_PARAMETERS)
            if unknown:
                raise ApiError(400, f"Invalid query parameter: {unknown[0]}", "invalidParameter")
            body: Any = None
            if route.request is not None:
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Invalid JSON payload received.", "parseError")
                # JSON null is a field's default value (the proto3 JSON mapping): in a PATCH it
                # clears the field. The schema describes the values, so nulls are left out of it.
                validate(route.request, {k: v for k, v in body.items() if v is not None})
            params = match.groupdict()
            with self._lock:
                project = params["project"]
                if project in self._state.disabled:
                    number = self.resource_manager.number(project) or project
                    raise service_disabled("compute.googleapis.com", "Compute Engine API", number)
                if project not in self._state.projects and not self.resource_manager.number(
                    project
                ):
                    raise ApiError(
                        404,
                        f"The resource 'projects/{params['project']}' was not found",
                        "notFound",
                    )
                result = getattr(self, f"_{route.method}")(route, params, query, body)
            if route.response is not None:
                validate(route.response, result)
            return 200, result
        raise ApiError(404, f"no such API path: {path}", "notFound")

    def _link(self, route: Route, params: Mapping[str, str], name: str) -> str:
        return link(params["project"], route.collection, name, params.get("region"))

    @staticmethod
    def _resource_name(params: Mapping[str, str]) -> str:
        """The path parameter that names the resource (`sslPolicy`, `targetHttpsProxy`...)."""
        return next(v for k, v in params.items() if k not in ("project", "region"))

    def _lookup(self, self_link: str) -> dict[str, Any]:
        try:
            return self._state.items[self_link]
        except KeyError:
            raise _not_found(self_link) from None

    def _get(
        self, route: Route, params: Mapping[str, str], query: Any, body: Any
    ) -> dict[str, Any]:
        if route.collection == "operations":
            return self._poll(self._link(route, params, params["operation"]))
        return copy.deepcopy(self._lookup(self._link(route, params, self._resource_name(params))))

    def _wait(
        self, route: Route, params: Mapping[str, str], query: Any, body: Any
    ) -> dict[str, Any]:
        return self._poll(self._link(route, params, params["operation"]))

    def _poll(self, self_link: str) -> dict[str, Any]:
        try:
            operation = self._state.operations[self_link]
        except KeyError:
            raise _not_found(self_link) from None
        if operation.body["status"] != "DONE":
            operation.polls_left -= 1
            operation.body["status"] = "RUNNING"
            operation.body.setdefault("startTime", _now())
            if operation.polls_left <= 0:
                self._finish(operation)
        return copy.deepcopy(operation.body)

    def _finish(self, operation: Operation) -> None:
        operation.body.update(status="DONE", progress=100, endTime=_now())
        if operation.failure is None:
            operation.apply()
            return
        status, code, message = operation.failure
        operation.body["httpErrorStatusCode"] = status
        operation.body["httpErrorMessage"] = HTTPStatus(status).phrase.upper()
        operation.body["error"] = {"errors": [{"code": code, "message": message}]}

    def _page(self, query: Mapping[str, list[str]]) -> tuple[int, int]:
        try:
            size = int(query.get("maxResults", [str(MAX_RESULTS)])[0])
            token = query.get("pageToken", [""])[0]
            start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError:
            raise ApiError(400, "Invalid value for maxResults or pageToken", "invalid") from None
        if not 0 < size <= MAX_RESULTS or start < 0:
            raise ApiError(400, f"maxResults must be between 1 and {MAX_RESULTS}", "invalid")
        if "filter" in query or "orderBy" in query:
            raise ApiError(400, "filter and orderBy are not supported by this server", "invalid")
        return start, size

    @staticmethod
    def _token(offset: int) -> str:
        return base64.urlsafe_b64encode(str(offset).encode()).decode()

    def _in(self, project: str, collection: str, scope: str) -> list[dict[str, Any]]:
        prefix = f"{GOOGLE_BASE}projects/{project}/{scope}/{collection}/"
        found = [item for key, item in self._state.items.items() if key.startswith(prefix)]
        return sorted(found, key=lambda item: item["name"])

    def _list(
        self, route: Route, params: Mapping[str, str], query: Mapping[str, list[str]], body: Any
    ) -> dict[str, Any]:
        start, size = self._page(query)
        scope = _scope(params.get("region"))
        items = self._in(params["project"], route.collection, scope)
        page = items[start : start + size]
        list_link = f"{GOOGLE_BASE}projects/{params['project']}/{scope}/{route.collection}"
        result: dict[str, Any] = {
            "kind": KINDS[route.collection] + "List",
            "id": list_link.removeprefix(GOOGLE_BASE),
            "selfLink": list_link,
            "items": copy.deepcopy(page),
        }
        if start + size < len(items):
            result["nextPageToken"] = self._token(start + size)
        if not page:
            del result["items"]
            result["warning"] = _no_results(scope)
        return result

    def _aggregatedList(  # noqa: N802 - named after the API method
        self, route: Route, params: Mapping[str, str], query: Mapping[str, list[str]], body: Any
    ) -> dict[str, Any]:
        start, size = self._page(query)
        project = params["project"]
        regions = set(DEFAULT_REGIONS)
        for key in self._state.items:
            found = re.match(rf"{re.escape(GOOGLE_BASE)}projects/[^/]+/regions/([^/]+)/", key)
            if found:
                regions.add(found.group(1))
        scopes = ["global", *(f"regions/{r}" for r in sorted(regions))]
        flat = [
            (scope, item) for scope in scopes for item in self._in(project, route.collection, scope)
        ]
        page = flat[start : start + size]
        field_name = route.collection
        grouped: dict[str, dict[str, Any]] = {}
        for scope, item in page:
            grouped.setdefault(scope, {field_name: []})[field_name].append(copy.deepcopy(item))
        last = start + size >= len(flat)
        if last:
            filled = {scope for scope, _ in flat}
            for scope in scopes:
                if scope not in filled:
                    grouped[scope] = {"warning": _no_results(scope)}
        list_link = f"{GOOGLE_BASE}projects/{project}/aggregated/{route.collection}"
        result: dict[str, Any] = {
            "kind": KINDS[route.collection] + "AggregatedList",
            "id": list_link.removeprefix(GOOGLE_BASE),
            "selfLink": list_link,
            "items": grouped,
        }
        if not last:
            result["nextPageToken"] = self._token(start + size)
        return result

    def _insert(
        self, route: Route, params: Mapping[str, str], query: Any, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(400, f"Invalid value for field 'resource.name': {name!r}", "invalid")
        self._reject_output_only(body)
        project, region = params["project"], params.get("region")
        target = link(project, route.collection, name, region)
        if target in self._state.items:
            raise ApiError(
                409,
                f"The resource '{target.removeprefix(GOOGLE_BASE)}' already exists",
                "alreadyExists",
            )
        self._check_references(project, route.collection, body, region)
        if route.collection == "sslPolicies":
            _check_tls_1_3({**DEFAULTS["sslPolicies"], **body})

        def apply() -> None:
            self._store(project, route.collection, body, region)

        return self._operation(project, region, "insert", target, apply)

    def _patch(
        self, route: Route, params: Mapping[str, str], query: Any, body: dict[str, Any]
    ) -> dict[str, Any]:
        project, region = params["project"], params.get("region")
        target = self._link(route, params, self._resource_name(params))
        current = self._lookup(target)
        self._check_fingerprint(current, body.get("fingerprint"))
        changes = {k: v for k, v in body.items() if k != "fingerprint"}
        for owner, name in REFERENCES:
            if owner == route.collection and changes.get(name) == "":
                # Google's PATCH treats an empty string as "no change" for a reference: only an
                # explicit null clears it. Refuse it, so a client that means "detach" finds out.
                raise ApiError(
                    400,
                    f"Invalid value for field 'resource.{name}': ''. Send null to clear it",
                    "invalid",
                )
        if changes.get("name", current["name"]) != current["name"]:
            raise ApiError(400, "Invalid value for field 'resource.name': cannot change", "invalid")
        self._reject_output_only(changes)
        self._check_references(project, route.collection, changes, region)
        if route.collection == "sslPolicies":
            _check_tls_1_3({**current, **{k: v for k, v in changes.items() if v is not None}})

        def apply() -> None:
            stored = self._state.items[target]
            stored.update({k: v for k, v in changes.items() if v is not None})
            for key in [k for k, v in changes.items() if v is None]:
                stored.pop(key, None)  # null clears the field (a reference: detaches)
            for owner, name in REFERENCES:
                if owner == route.collection and changes.get(name):
                    stored[name] = canonical(changes[name])
            if stored.get("profile") != "CUSTOM":
                stored.pop("customFeatures", None)
            stored["fingerprint"] = _fingerprint()

        return self._operation(project, region, "patch", target, apply)

    def _delete(
        self, route: Route, params: Mapping[str, str], query: Any, body: Any
    ) -> dict[str, Any]:
        project, region = params["project"], params.get("region")
        target = self._link(route, params, self._resource_name(params))
        self._lookup(target)
        for (owner, name), target_collection in REFERENCES.items():
            if target_collection != route.collection:
                continue
            users = sorted(
                key
                for key, item in self._state.items.items()
                if f"/{owner}/" in key and item.get(name) == target
            )
            if users:
                raise ApiError(
                    400,
                    f"The {route.collection} resource '{target.removeprefix(GOOGLE_BASE)}' is "
                    f"already being used by '{users[0].removeprefix(GOOGLE_BASE)}'",
                    "resourceInUseByAnotherResource",
                )

        def apply() -> None:
            self._state.items.pop(target, None)

        return self._operation(project, region, "delete", target, apply)

    def _setSslPolicy(  # noqa: N802 - named after the API method
        self, route: Route, params: Mapping[str, str], query: Any, body: dict[str, Any]
    ) -> dict[str, Any]:
        project = params["project"]
        target = self._link(route, params, self._resource_name(params))
        self._lookup(target)
        reference = body.get("sslPolicy")
        self._check_references(project, route.collection, {"sslPolicy": reference}, None)

        def apply() -> None:
            stored = self._state.items[target]
            if reference:
                stored["sslPolicy"] = canonical(reference)
            else:
                stored.pop("sslPolicy", None)
            if _fingerprinted(route.collection):
                stored["fingerprint"] = _fingerprint()

        return self._operation(project, None, "setSslPolicy", target, apply)

    # -- helpers --

    @staticmethod
    def _reject_output_only(body: Mapping[str, Any]) -> None:
        for name in sorted(OUTPUT_ONLY & set(body)):
            raise ApiError(
                400, f"Invalid value for field 'resource.{name}': output only", "invalid"
            )

    @staticmethod
    def _check_fingerprint(current: Mapping[str, Any], given: Any) -> None:
        if not given:
            raise ApiError(400, "Required field 'resource.fingerprint' not specified", "required")
        if given != current["fingerprint"]:
            raise ApiError(
                412,
                "Invalid fingerprint: the resource changed since it was read "
                f"(expected {current['fingerprint']}, got {given})",
                "conditionNotMet",
            )

    def _check_references(
        self, project: str, collection: str, body: Mapping[str, Any], region: str | None
    ) -> None:
        for (owner, name), target_collection in REFERENCES.items():
            reference = body.get(name)
            if owner != collection or not reference:
                continue
            target = canonical(reference)
            expected = f"{GOOGLE_BASE}projects/{project}/{_scope(region)}/{target_collection}/"
            if not target.startswith(expected):
                raise ApiError(
                    400,
                    f"Invalid value for field 'resource.{name}': {reference!r}: a "
                    f"{'regional' if region else 'global'} resource needs a "
                    f"{target_collection} resource in {_scope(region)} of project {project}",
                    "invalid",
                )
            if target not in self._state.items:
                raise _not_found(target)

    def _store(
        self, project: str, collection: str, body: Mapping[str, Any], region: str | None
    ) -> str:
        self_link = link(project, collection, body["name"], region)
        resource = {
            **DEFAULTS[collection],
            **copy.deepcopy(dict(body)),
            "kind": KINDS[collection],
            "id": str(next(self._ids)),
            "creationTimestamp": _now(),
            "selfLink": self_link,
        }
        if _fingerprinted(collection):
            resource["fingerprint"] = _fingerprint()
        if region:
            resource["region"] = f"{GOOGLE_BASE}projects/{project}/regions/{region}"
        for owner, name in REFERENCES:
            if owner == collection and resource.get(name):
                resource[name] = canonical(resource[name])
        self._state.items[self_link] = resource
        return self_link

    def _operation(
        self,
        project: str,
        region: str | None,
        operation_type: str,
        target: str,
        apply: Callable[[], None],
    ) -> dict[str, Any]:
        name = f"operation-{int(datetime.now(UTC).timestamp() * 1000)}-{os.urandom(6).hex()}"
        self_link = link(project, "operations", name, region)
        target_id = self._state.items.get(target, {}).get("id", str(next(self._ids)))
        body: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "operationType": operation_type,
            "targetLink": target,
            "targetId": target_id,
            "status": "PENDING",
            "user": "anonymous@local-compute",
            "progress": 0,
            "insertTime": _now(),
            "selfLink": self_link,
        }
        if region:
            body["region"] = f"{GOOGLE_BASE}projects/{project}/regions/{region}"
        failure = next((f for f in self._state.failures if f.target == target), None)
        operation = Operation(body, apply, self.operation_polls)
        if failure is not None:
            self._state.failures.remove(failure)
            operation.failure = (failure.status, failure.code, failure.message)
        self._state.operations[self_link] = operation
        if operation.polls_left <= 0:
            self._finish(operation)
        return copy.deepcopy(body)


@cache
def _fingerprinted(collection: str) -> bool:
    """Whether the collection's resources carry a fingerprint (TargetSslProxy does not)."""
    return "fingerprint" in discovery()["schemas"][SCHEMAS[collection]]["properties"]


def _check_tls_1_3(policy: Mapping[str, Any]) -> None:
    """SslPolicy.minTlsVersion's own description: "When set to TLS_1_3, the profile field must
    be set to RESTRICTED"."""
    if policy.get("minTlsVersion") == "TLS_1_3" and policy.get("profile") != "RESTRICTED":
        raise ApiError(
            400,
            "Invalid value for field 'resource.profile': "
            f"{policy.get('profile')!r}. TLS_1_3 requires the RESTRICTED profile",
            "invalid",
        )


def _no_results(scope: str) -> dict[str, Any]:
    return {
        "code": "NO_RESULTS_ON_PAGE",
        "message": f"There are no results for scope '{scope}' on this page.",
        "data": [{"key": "scope", "value": scope}],
    }


class _Handler(BaseHTTPRequestHandler):
    server_api: ComputeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body = self.server_api.handle(
            self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), raw
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        return None
