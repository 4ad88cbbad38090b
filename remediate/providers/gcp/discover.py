"""GCP load balancing discovery through the Compute API (google-cloud-compute, REST transport).

Per project, four aggregated lists cover both global and regional resources: target HTTPS
proxies, SSL policies, URL maps and backend services; target SSL proxies (SSL proxy load
balancers) are global only and have no aggregated list, so they are one list call. References are
resolved in memory by selfLink, which is an identifier only: it keeps Google's host whatever
endpoint served it. Which projects, and the unit each is, is `fleet`'s business.

Every call goes through `Clients.options()`: transient failures (429, 500, 502, 503, 504, resets,
timeouts, a cut-off answer) are retried with exponential backoff and jitter, as google-api-core's
retry policies do, within the call's total budget; each attempt has a connect timeout and a read
timeout (`remediate.timeouts`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import google.auth
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import GoogleAPICallError, NotFound, RetryError
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.cloud import compute_v1
from google.protobuf.json_format import ParseError  # type: ignore[import-untyped]

from remediate.errors import DiscoveryError
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.provider import UnsupportedChangeError
from remediate.providers.gcp.model import Kind
from remediate.providers.gcp.rules import Link, owned_policy_link, settings_of
from remediate.timeouts import Timeouts, refused

ENDPOINT_ENV = "REMEDIATE_GCP_ENDPOINT"
SCOPES = ["https://www.googleapis.com/auth/compute"]
# Failures worth another attempt: what google-api-core's Compute policies retry (503, deadline),
# and the other answers Google documents as retryable (429, 500, 502, 504), resets, timeouts and
# an answer cut off mid-body. A refused connection is not retried (see `transient`).
TRANSIENT: tuple[type[BaseException], ...] = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    api_exceptions.DeadlineExceeded,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ParseError,
)
# Backoff between attempts: the first up to half a second, doubling up to 10 s (with full jitter).
RETRY_INITIAL, RETRY_MAXIMUM, RETRY_MULTIPLIER = 0.5, 10.0, 2.0


def transient(exc: BaseException) -> bool:
    """The retry predicate: a transient failure, unless nothing listens at the endpoint."""
    return isinstance(exc, TRANSIENT) and not refused(exc)


class AttemptTimeout:
    """A google-api-core timeout decorator: each attempt of a call gets the connect timeout and a
    read timeout capped by what is left of the call's total budget."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        deadline = time.monotonic() + self.timeouts.total

        @functools.wraps(func)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            left = max(deadline - time.monotonic(), 1.0)
            kwargs["timeout"] = (self.timeouts.connect, min(self.timeouts.read, left))
            return func(*args, **kwargs)

        return attempt


NAME = "gcp"


def endpoint_of(policy: Policy) -> str | None:
    """`REMEDIATE_GCP_ENDPOINT`, else `gcp.endpoint`, else None for Google's own endpoint."""
    return os.environ.get(ENDPOINT_ENV) or settings_of(policy).endpoint or None


def credentials_for(endpoint: str | None, scopes: list[str] | None = None) -> Credentials:
    """Anonymous for a plain-http loopback endpoint; Application Default Credentials (with
    `scopes`, Compute's by default) otherwise."""
    try:
        parts = urlsplit(endpoint) if endpoint else None
    except ValueError as exc:
        raise DiscoveryError(f"GCP endpoint {endpoint}: not a valid URL: {exc}") from None
    scheme = parts.scheme if parts is not None and endpoint and "://" in endpoint else ""
    if scheme not in ("", "http", "https"):
        raise DiscoveryError(f"GCP endpoint {endpoint}: use an https:// (or loopback http://) URL")
    if endpoint is not None and scheme == "http":
        host = (parts.hostname if parts is not None else None) or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise DiscoveryError(
                f"GCP endpoint {endpoint}: plain http is only allowed on loopback "
                "(use https for anything else)"
            )
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        credentials, _ = google.auth.default(scopes=scopes or SCOPES)
    except DefaultCredentialsError:
        raise DiscoveryError(
            "no Google Cloud credentials found: run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
        ) from None
    return credentials


@dataclass(frozen=True)
class Clients:
    """One client per Compute collection, all pointed at the same endpoint."""

    endpoint: str
    timeouts: Timeouts
    proxies: compute_v1.TargetHttpsProxiesClient
    ssl_proxies: compute_v1.TargetSslProxiesClient
    region_proxies: compute_v1.RegionTargetHttpsProxiesClient
    ssl_policies: compute_v1.SslPoliciesClient
    region_ssl_policies: compute_v1.RegionSslPoliciesClient
    url_maps: compute_v1.UrlMapsClient
    backend_services: compute_v1.BackendServicesClient
    global_operations: compute_v1.GlobalOperationsClient
    region_operations: compute_v1.RegionOperationsClient
    http: AuthorizedSession
    """For the one call the generated clients cannot make: a PATCH with an explicit null."""

    @classmethod
    def open(cls, policy: Policy) -> Clients:
        endpoint = endpoint_of(policy)
        credentials = credentials_for(endpoint)
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        kwargs: dict[str, Any] = {"credentials": credentials, "client_options": options}
        return cls(
            endpoint=endpoint or "https://compute.googleapis.com",
            timeouts=Timeouts.from_env(),
            proxies=compute_v1.TargetHttpsProxiesClient(**kwargs),
            ssl_proxies=compute_v1.TargetSslProxiesClient(**kwargs),
            region_proxies=compute_v1.RegionTargetHttpsProxiesClient(**kwargs),
            ssl_policies=compute_v1.SslPoliciesClient(**kwargs),
            region_ssl_policies=compute_v1.RegionSslPoliciesClient(**kwargs),
            url_maps=compute_v1.UrlMapsClient(**kwargs),
            backend_services=compute_v1.BackendServicesClient(**kwargs),
            global_operations=compute_v1.GlobalOperationsClient(**kwargs),
            region_operations=compute_v1.RegionOperationsClient(**kwargs),
            http=AuthorizedSession(credentials),  # type: ignore[no-untyped-call]
        )

    def options(self) -> dict[str, Any]:
        """The `retry` and `timeout` arguments of every call."""
        return call_options(self.timeouts)

    @contextmanager
    def errors(self, what: str | None = None) -> Iterator[None]:
        """Turn client failures into one-line `DiscoveryError`s naming what was being read."""
        try:
            yield
        except FAILURES as exc:
            reason = self.failure(exc)
            raise DiscoveryError(f"GCP {what}: {reason}" if what else reason) from None

    def failure(self, exc: BaseException) -> str:
        """A failed call as the user reads it, for reads and writes alike."""
        return failure(exc, f"the Compute API at {self.endpoint}", self.timeouts)


def failure(exc: BaseException, api: str, timeouts: Timeouts) -> str:
    """A failed call of `api` ("the Compute API at URL") in one line."""
    if isinstance(exc, RetryError):
        cause = exc.cause
        last = failure(cause, api, timeouts) if cause is not None else "no answer"
        return f"{last}; gave up after {timeouts.total:g} s of retries"
    if isinstance(exc, GoogleAPICallError):
        return api_message(exc)
    if isinstance(exc, requests.Timeout):
        return (
            f"no answer from {api} ({type(exc).__name__}; REMEDIATE_READ_TIMEOUT and "
            "REMEDIATE_TIMEOUT set how long to wait)"
        )
    if isinstance(exc, ParseError):
        return f"{api} sent an answer that was cut off or malformed"
    if isinstance(exc, requests.RequestException):
        return f"cannot reach {api} ({type(exc).__name__})"
    if isinstance(exc, GoogleAuthError):
        return f"credentials were refused: {exc}"
    return str(exc)


def call_options(timeouts: Timeouts) -> dict[str, Any]:
    """The `retry` and `timeout` arguments of a call (see the module's description)."""
    retry = Retry(
        predicate=transient,
        initial=RETRY_INITIAL,
        maximum=RETRY_MAXIMUM,
        multiplier=RETRY_MULTIPLIER,
        timeout=timeouts.total,
    )
    return {"retry": retry, "timeout": AttemptTimeout(timeouts)}


# What a Compute call can raise once its retries are spent (`Clients.failure` words each).
FAILURES = (api_exceptions.GoogleAPIError, requests.RequestException, GoogleAuthError, ParseError)


REQUEST_LINE = re.compile(r"^[A-Z]+ \S+: ")


def api_message(exc: GoogleAPICallError) -> str:
    """`404 The resource ... was not found`, without the request line the client prefixes; an
    API that is not enabled in the project (ErrorInfo SERVICE_DISABLED, or the older
    `accessNotConfigured` reason) in a line of its own rather than Google's paragraph."""
    reasons = {str(e.get("reason")) for e in exc.errors if isinstance(e, dict)}
    if exc.reason == "SERVICE_DISABLED" or "accessNotConfigured" in reasons:
        service = (exc.metadata or {}).get("service") or "the API"
        return (
            f"{exc.code} {service} is not enabled in this project (SERVICE_DISABLED): enable it, "
            "or leave the project out with gcp.exclude"
        )
    details = [str(e["message"]) for e in exc.errors if isinstance(e, dict) and e.get("message")]
    # Without the older APIs' `errors` list, the message is api-core's "GET URL: message".
    message = "; ".join(details) if details else REQUEST_LINE.sub("", str(exc.message))
    return f"{exc.code} {message}" if exc.code else message


def ssl_policy_facts(raw: compute_v1.SslPolicy) -> dict[str, Any]:
    return {
        "name": raw.name,
        "min_tls_version": raw.min_tls_version or "TLS_1_0",
        "profile": raw.profile or "COMPATIBLE",
    }


def owned_policy_settings(raw: compute_v1.SslPolicy | None) -> dict[str, Any]:
    """What the fingerprint of remediate's own SSL policy covers; `exists` False when missing."""
    if raw is None:
        return {"exists": False}
    facts = ssl_policy_facts(raw)
    return {
        "exists": True,
        "min_tls_version": facts["min_tls_version"],
        "profile": facts["profile"],
        # Unset means DEFAULT (the API's own description of the field).
        "post_quantum_key_exchange": raw.post_quantum_key_exchange or "DEFAULT",
    }


def proxy_settings(raw: compute_v1.TargetHttpsProxy | compute_v1.TargetSslProxy) -> dict[str, Any]:
    return {"ssl_policy": raw.ssl_policy or None}


def backend_settings(raw: compute_v1.BackendService) -> dict[str, Any]:
    """Protocol to the backends, and `timeoutSec`, which also caps a WebSocket's lifetime."""
    return {"protocol": raw.protocol or "HTTP", "timeout_sec": raw.timeout_sec or 30}


def url_map_services(url_map: compute_v1.UrlMap) -> set[str]:
    """Every backend service a URL map can route to (backend buckets are not services)."""
    found = {url_map.default_service}
    routes = [
        url_map.default_route_action,
        *(m.default_route_action for m in url_map.path_matchers),
    ]
    for matcher in url_map.path_matchers:
        found.add(matcher.default_service)
        for path_rule in matcher.path_rules:
            found.add(path_rule.service)
            routes.append(path_rule.route_action)
        for route_rule in matcher.route_rules:
            found.add(route_rule.service)
            routes.append(route_rule.route_action)
    for action in routes:
        found.update(weighted.backend_service for weighted in action.weighted_backend_services)
    return {canonical(link) for link in found if link and "/backendServices/" in link}


def canonical(url: str) -> str:
    """A reference in selfLink form (references may use another host or a partial path)."""
    try:
        return Link.parse(url).self_link
    except ValueError:
        return url


@dataclass
class ProjectState:
    """What one project's four aggregated lists hold (global and every region), by selfLink."""

    proxies: list[compute_v1.TargetHttpsProxy]
    ssl_proxies: list[compute_v1.TargetSslProxy]
    ssl_policies: dict[str, compute_v1.SslPolicy]
    services: dict[str, compute_v1.BackendService]
    url_maps: dict[str, compute_v1.UrlMap]


def read_project(clients: Clients, project: str) -> ProjectState:
    """One project's lists; a failure is a `DiscoveryError` with its one-line reason."""
    with clients.errors():
        proxies = [
            proxy
            for _, scoped in clients.proxies.aggregated_list(
                request=compute_v1.AggregatedListTargetHttpsProxiesRequest(project=project),
                **clients.options(),
            )
            for proxy in scoped.target_https_proxies
        ]
        ssl_proxies = list(
            clients.ssl_proxies.list(
                request=compute_v1.ListTargetSslProxiesRequest(project=project),
                **clients.options(),
            )
        )
        ssl_policies = {
            canonical(item.self_link): item
            for _, scoped in clients.ssl_policies.aggregated_list(
                request=compute_v1.AggregatedListSslPoliciesRequest(project=project),
                **clients.options(),
            )
            for item in scoped.ssl_policies
        }
        url_maps = {
            canonical(item.self_link): item
            for _, scoped in clients.url_maps.aggregated_list(
                request=compute_v1.AggregatedListUrlMapsRequest(project=project),
                **clients.options(),
            )
            for item in scoped.url_maps
        }
        services = {
            canonical(item.self_link): item
            for _, scoped in clients.backend_services.aggregated_list(
                request=compute_v1.AggregatedListBackendServicesRequest(project=project),
                **clients.options(),
            )
            for item in scoped.backend_services
        }
    return ProjectState(proxies, ssl_proxies, ssl_policies, services, url_maps)


def project_inventory(policy: Policy, state: ProjectState) -> Inventory:
    """The endpoints and facts of one project's lists."""
    inventory = Inventory(providers=[NAME])
    owned: dict[str, Endpoint] = {}
    proxies: list[Endpoint] = []
    services: dict[str, Endpoint] = {}
    ssl_facts = {link: ssl_policy_facts(raw) for link, raw in state.ssl_policies.items()}
    proxy_facts: dict[str, dict[str, Any]] = {}
    for raw in state.proxies:
        proxy = _proxy_endpoint(raw)
        proxies.append(proxy)
        proxy_facts[proxy.resource] = dict(proxy.settings)
        slot = owned_policy_link(proxy.resource, policy)
        if slot not in owned:
            owned[slot] = _owned_policy_endpoint(slot, state.ssl_policies.get(slot))
        url_map = state.url_maps.get(canonical(raw.url_map))
        for service_link in sorted(url_map_services(url_map) if url_map else ()):
            service = state.services.get(service_link)
            if service is not None and service_link not in services:
                services[service_link] = _service_endpoint(service)
    for raw_ssl in state.ssl_proxies:
        proxy = _proxy_endpoint(raw_ssl, Kind.TARGET_SSL_PROXY)
        proxies.append(proxy)
        proxy_facts[proxy.resource] = dict(proxy.settings)
        slot = owned_policy_link(proxy.resource, policy)
        if slot not in owned:
            owned[slot] = _owned_policy_endpoint(slot, state.ssl_policies.get(slot))
    # remediate's own policies first: attaching one needs it to exist.
    inventory.endpoints.extend(owned.values())
    inventory.endpoints.extend(proxies)
    inventory.endpoints.extend(services.values())
    inventory.facts["gcp.ssl_policies"] = ssl_facts
    inventory.facts["gcp.proxies"] = proxy_facts
    return inventory


def _proxy_endpoint(
    raw: compute_v1.TargetHttpsProxy | compute_v1.TargetSslProxy,
    kind: Kind = Kind.TARGET_HTTPS_PROXY,
) -> Endpoint:
    link = Link.parse(raw.self_link)
    https = isinstance(raw, compute_v1.TargetHttpsProxy)
    return Endpoint(
        provider=NAME,
        resource=raw.self_link,
        kind=kind,
        name=raw.name,
        location=link.location,
        settings=proxy_settings(raw),
        context={
            "gcp_fingerprint": raw.fingerprint if https else None,
            "url_map": raw.url_map if https else None,
        },
    )


def _owned_policy_endpoint(self_link: str, raw: compute_v1.SslPolicy | None) -> Endpoint:
    link = Link.parse(self_link)
    return Endpoint(
        provider=NAME,
        resource=self_link,
        kind=Kind.SSL_POLICY,
        name=link.name,
        location=link.location,
        settings=owned_policy_settings(raw),
        context={"gcp_fingerprint": raw.fingerprint if raw is not None else None},
    )


def _service_endpoint(raw: compute_v1.BackendService) -> Endpoint:
    link = Link.parse(raw.self_link)
    return Endpoint(
        provider=NAME,
        resource=raw.self_link,
        kind=Kind.BACKEND_SERVICE,
        name=raw.name,
        location=link.location,
        settings=backend_settings(raw),
    )


def get_proxy(
    clients: Clients, self_link: str
) -> compute_v1.TargetHttpsProxy | compute_v1.TargetSslProxy | None:
    """The proxy (target HTTPS or SSL) now, or None when it no longer exists."""
    link = Link.parse(self_link)
    try:
        if link.collection == "targetSslProxies":
            return clients.ssl_proxies.get(
                project=link.project, target_ssl_proxy=link.name, **clients.options()
            )
        if link.region:
            return clients.region_proxies.get(
                project=link.project,
                region=link.region,
                target_https_proxy=link.name,
                **clients.options(),
            )
        return clients.proxies.get(
            project=link.project, target_https_proxy=link.name, **clients.options()
        )
    except NotFound:
        return None


def get_ssl_policy(clients: Clients, self_link: str) -> compute_v1.SslPolicy | None:
    """The SSL policy now, or None when it does not exist."""
    link = Link.parse(self_link)
    try:
        if link.region:
            return clients.region_ssl_policies.get(
                project=link.project,
                region=link.region,
                ssl_policy=link.name,
                **clients.options(),
            )
        return clients.ssl_policies.get(
            project=link.project, ssl_policy=link.name, **clients.options()
        )
    except NotFound:
        return None


def read_settings(clients: Clients, resources: Mapping[str, str]) -> dict[str, Any]:
    """Re-read `{selfLink: kind}`: each resource's settings now (None when a proxy is gone)."""
    found: dict[str, Any] = {}
    for self_link, kind in resources.items():
        with clients.errors(f"reading {self_link}"):
            if kind in (Kind.TARGET_HTTPS_PROXY, Kind.TARGET_SSL_PROXY):
                proxy = get_proxy(clients, self_link)
                found[self_link] = None if proxy is None else proxy_settings(proxy)
            elif kind == Kind.SSL_POLICY:
                found[self_link] = owned_policy_settings(get_ssl_policy(clients, self_link))
            else:
                raise UnsupportedChangeError(f"{self_link}: remediate does not read a {kind}")
    return found
