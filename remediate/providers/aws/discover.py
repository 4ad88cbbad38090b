"""AWS ELBv2 discovery: load balancers, TLS listeners, ALB attributes, target groups.

Regions are read in parallel and, within a region, the per-load-balancer calls run on a small
thread pool: the describe calls are latency-bound. A token bucket per region (`RateLimit`, sized by
`REMEDIATE_AWS_RATE`) paces every request so the client stays under the account's rate limit
instead of being throttled and retrying; botocore's adaptive retry mode is the safety net when the
account's limit is lower or other callers share it. Every call is bounded (`remediate.timeouts`):
connect and read timeouts per attempt, and no transport retry past the call's total budget or
after a refused connection.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from remediate.errors import DiscoveryError
from remediate.inventory import Inventory
from remediate.model import Endpoint
from remediate.policy import Policy
from remediate.progress import Progress, Silent
from remediate.providers.aws import apigateway, classic, restapi
from remediate.providers.aws.model import (
    ApiDomainTarget,
    AWSSettings,
    ClassicListenerTarget,
    Kind,
    RestApiTarget,
    RestDomainTarget,
)
from remediate.providers.aws.rules import HTTP2_ATTRIBUTE, TLS_PROTOCOLS, ClassicPolicy, SslPolicy
from remediate.timeouts import Timeouts, refused

if TYPE_CHECKING:
    from mypy_boto3_elbv2.client import ElasticLoadBalancingv2Client
else:
    ElasticLoadBalancingv2Client = Any

WORKERS_PER_REGION = 8
# Requests a second and burst, per region, unless REMEDIATE_AWS_RATE says "RATE[/BURST]" (or "off").
# ELBv2 throttles each account per region with token buckets; the benchmark proxy models one of 40
# burst then 20 a second. A burst below the bucket's leaves headroom for requests that arrive out of
# step (network jitter, other callers). Lower the rate when the account's limit is lower or shared.
RATE_ENV = "REMEDIATE_AWS_RATE"
DEFAULT_RATE = "20/32"
# Attributes whose absence from describe_load_balancer_attributes means the AWS default.
ATTRIBUTE_DEFAULTS: dict[str, Any] = {HTTP2_ATTRIBUTE: True}

T = TypeVar("T")


class RateLimit:
    """A token bucket shared by every thread calling one region.

    Each HTTP attempt (retries included) reserves the next free slot and sleeps until it comes, so
    requests leave at most `rate` a second after an initial `burst`, in the order they asked.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> RateLimit | None:
        value = os.environ.get(RATE_ENV, DEFAULT_RATE).strip() or DEFAULT_RATE
        if value.lower() == "off":
            return None
        rate, _, burst = value.partition("/")
        try:
            limit = cls(float(rate), int(burst or 1))
        except ValueError:
            limit = cls(0, 0)
        if not 0 < limit.rate < math.inf or limit.burst < 1:  # nan compares false
            raise DiscoveryError(
                f"{RATE_ENV}={value!r}: expected RATE[/BURST] with RATE > 0 and BURST >= 1 "
                "(for example 20/40), or off"
            )
        return limit

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate
        if wait > 0:
            time.sleep(wait)

    def before_send(self, **_: Any) -> None:
        """botocore `before-send` handler: returning None lets the request go."""
        self.acquire()


def client_config(timeouts: Timeouts) -> Config:
    """Adaptive retries (throttling is retried up to 10 attempts) with bounded waits."""
    return Config(
        retries={"mode": "adaptive", "max_attempts": 10},
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        max_pool_connections=WORKERS_PER_REGION * 2,
        user_agent_extra="remediate",
    )


class Deadline:
    """botocore handlers that bound a call: `start` stamps it (`before-call`), `check` (a
    `needs-retry` handler) ends its retries by raising the failure at hand when the connection
    was refused, or when another attempt could run past the call's total budget and the failure
    is not throttling (adaptive retries keep their own attempts for that)."""

    KEY = "remediate_started"

    def __init__(self, timeouts: Timeouts) -> None:
        # An attempt may wait up to the read timeout: one that would end past the budget is
        # not started (botocore cannot shorten the read timeout of a single attempt).
        self.last_start = timeouts.total - timeouts.read
        self._throttled = ThrottledRetryableChecker()

    def start(self, context: dict[str, Any], **_: Any) -> None:
        context[self.KEY] = time.monotonic()

    def check(
        self,
        attempts: int = 1,
        response: tuple[Any, dict[str, Any]] | None = None,
        operation: Any = None,
        caught_exception: BaseException | None = None,
        request_dict: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if caught_exception is not None and refused(caught_exception):
            raise caught_exception
        context = request_dict.get("context", {}) if request_dict else {}
        started = context.get(self.KEY)
        if started is None or time.monotonic() - started < self.last_start:
            return
        if caught_exception is not None:
            raise caught_exception
        if response is None or operation is None:
            return
        http, parsed = response
        if http.status_code < 500:
            return  # throttling and other client errors: botocore decides
        if self._throttled.is_retryable(
            RetryContext(
                attempt_number=attempts,
                operation_model=operation,
                parsed_response=parsed,
                http_response=http,
            )
        ):
            return
        raise ClientError(parsed, operation.name)  # type: ignore[arg-type]

    def register(self, client: ElasticLoadBalancingv2Client) -> None:
        client.meta.events.register("before-call", self.start)
        client.meta.events.register_first("needs-retry", self.check)


_OPENING = threading.Lock()
"""Held while a `Session` makes its clients: the regions of one account share a boto3 session
(`accounts.Credentials`), and boto3 sessions are not thread-safe. Making a client is CPU work in
Python, which the GIL runs one thread at a time anyway."""


@dataclass(frozen=True)
class Session:
    """A client per region, made up front: boto3 sessions are not thread-safe, clients are."""

    clients: Mapping[str, ElasticLoadBalancingv2Client]
    classic: Mapping[str, Any] = field(default_factory=dict)
    """Classic ELB (`elb`) clients by region."""
    account: Callable[[], str] = lambda: ""
    """The account id (STS GetCallerIdentity, asked once and only when needed)."""
    http_apis: Mapping[str, Any] = field(default_factory=dict)
    """API Gateway v2 (`apigatewayv2`) clients by region."""
    rest_apis: Mapping[str, Any] = field(default_factory=dict)
    """API Gateway (`apigateway`, REST APIs and their custom domains) clients by region."""

    @classmethod
    def open(
        cls,
        regions: Iterable[str],
        session: boto3.session.Session | None = None,
        account_id: str | None = None,
    ) -> Session:
        """Clients for `regions`; `session` lets a caller bring its own credentials or event
        handlers (boto3's default chain otherwise). A caller that knows the account the
        credentials sign for passes `account_id`: no STS client is then made (a client costs
        about 20 ms of CPU to build, which adds up over a fleet of accounts)."""
        session = session or boto3.session.Session()
        with _OPENING:
            return cls._open(regions, session, account_id)

    @classmethod
    def _open(
        cls, regions: Iterable[str], session: boto3.session.Session, account_id: str | None
    ) -> Session:
        if session.get_credentials() is None:
            raise DiscoveryError(
                "no AWS credentials found: configure the standard credential chain "
                "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, or an instance role)"
            )
        wanted = list(regions) or [session.region_name or ""]
        if wanted == [""]:
            raise DiscoveryError("no AWS region: set aws.regions in the policy file, or AWS_REGION")
        known = {
            region
            for partition in session.get_available_partitions()
            for region in session.get_available_regions("elbv2", partition_name=partition)
        }
        for region in wanted:
            if region not in known:
                raise DiscoveryError(
                    f"unknown AWS region {region!r} in aws.regions "
                    "(if it is new, upgrade botocore to learn about it)"
                )
        timeouts = Timeouts.from_env()
        config = client_config(timeouts)
        try:
            clients = {
                region: session.client("elbv2", region_name=region, config=config)
                for region in wanted
            }
            classic_clients = {
                region: session.client("elb", region_name=region, config=config)
                for region in wanted
            }
            http_apis = {
                region: session.client("apigatewayv2", region_name=region, config=config)
                for region in wanted
            }
            rest_apis = {
                region: session.client("apigateway", region_name=region, config=config)
                for region in wanted
            }
            sts = (
                None
                if account_id is not None
                else session.client("sts", region_name=wanted[0], config=config)
            )
        except (NoRegionError, BotoCoreError, ValueError) as exc:
            # ValueError: botocore's word for an AWS_ENDPOINT_URL that is not a URL.
            raise DiscoveryError(f"cannot create an ELBv2 client: {exc}") from None
        for client in [
            *clients.values(),
            *classic_clients.values(),
            *http_apis.values(),
            *rest_apis.values(),
        ]:
            Deadline(timeouts).register(client)
            limit = RateLimit.from_env()
            if limit is not None:
                client.meta.events.register("before-send", limit.before_send)

        @cache
        def account() -> str:
            if sts is None:
                return account_id or ""
            with _Errors(wanted[0]):
                return str(sts.get_caller_identity()["Account"])

        return cls(clients, classic_clients, account, http_apis, rest_apis)


NAME = "aws"


def regions_of(policy: Policy) -> list[str]:
    return list(policy.section(NAME, AWSSettings).regions)


def discover(
    policy: Policy,
    progress: Progress | None = None,
    boto_session: boto3.session.Session | None = None,
    regions: Iterable[str] | None = None,
    label: str = NAME,
    account_id: str | None = None,
) -> Inventory:
    """Every ELBv2 load balancer, TLS listener and target group in `regions` (default: the
    policy's) of the account `boto_session` signs as (`account_id`, when the caller knows it);
    `label` starts each progress line."""
    progress = progress or Silent()
    session = Session.open(
        regions_of(policy) if regions is None else regions, boto_session, account_id
    )
    inventory = Inventory(providers=[NAME])
    catalogs: dict[str, list[SslPolicy]] = {}
    classic_catalogs: dict[str, list[ClassicPolicy]] = {}
    allowed: dict[str, list[str]] = {}
    rest_allowed: dict[str, list[str]] = {}
    # ELBv2 and the other kinds (Classic, API domains) of every region are read side by side.
    with ThreadPoolExecutor(max_workers=2 * len(session.clients)) as pool:
        v2 = {
            region: pool.submit(_discover_region, region, client, policy, progress, label)
            for region, client in session.clients.items()
        }
        others = {
            region: pool.submit(_discover_others, region, session, progress, label)
            for region in session.classic
        }
        for region, future in v2.items():
            endpoints, catalog = future.result()
            inventory.endpoints.extend(endpoints)
            catalogs[region] = catalog
        for region, other in others.items():
            endpoints, classic_catalog, api_policies = other.result()
            inventory.endpoints.extend(endpoints)
            classic_catalogs[region] = classic_catalog
            allowed[region] = api_policies
            rest_allowed[region] = restapi.security_policies(session.rest_apis[region])
    inventory.facts["aws.ssl_policies"] = catalogs
    inventory.facts["aws.classic_policies"] = classic_catalogs
    inventory.facts["aws.api_security_policies"] = allowed
    inventory.facts["aws.rest_security_policies"] = rest_allowed
    return inventory


def _discover_others(
    region: str, session: Session, progress: Progress, label: str
) -> tuple[list[Endpoint], list[ClassicPolicy], list[str]]:
    """The region's Classic HTTPS/SSL listeners (with, when there are any, the predefined policies
    their negotiation policies reference) and HTTP/WebSocket API custom domains (with the
    SecurityPolicy values the service model declares)."""
    key = f"{label} {region} classic, API domains"
    progress.update(key, "listing Classic load balancers and API custom domains")
    client = session.classic[region]
    with _Errors(region):
        endpoints = classic.endpoints(client, region, session.account)
        catalog = classic.predefined(client) if endpoints else []
        domains = apigateway.endpoints(session.http_apis[region], region)
        rest_domains = restapi.domain_endpoints(session.rest_apis[region], region)
        rest_apis = restapi.api_endpoints(session.rest_apis[region], region)
    # Both API Gateway APIs list the account's Regional custom domains: a domain the REST API
    # lists is planned once, as a REST custom domain (its securityPolicy is the same field).
    rest_names = {endpoint.context["domain_name"] for endpoint in rest_domains}
    domains = [d for d in domains if d.context["domain_name"] not in rest_names]
    progress.done(
        key,
        f"{len(endpoints)} Classic HTTPS/SSL listeners, "
        f"{len(domains) + len(rest_domains)} API custom domains, {len(rest_apis)} REST APIs",
    )
    return (
        [*endpoints, *domains, *rest_domains, *rest_apis],
        catalog,
        apigateway.security_policies(session.http_apis[region]),
    )


def _discover_region(
    region: str,
    client: ElasticLoadBalancingv2Client,
    policy: Policy,
    progress: Progress,
    label: str,
) -> tuple[list[Endpoint], list[SslPolicy]]:
    key = f"{label} {region}"
    with _Errors(region), ThreadPoolExecutor(max_workers=WORKERS_PER_REGION) as pool:
        # The security policies and target groups are read while the load balancers are listed;
        # each load balancer's attribute read follows its own listener read on the same worker,
        # so the pool never waits for a slow phase to drain before the next one starts.
        progress.update(key, "listing load balancers")
        catalog_future = pool.submit(_ssl_policies, client)
        target_groups_future = pool.submit(_target_groups, client)
        balancers: list[dict[str, Any]] = []
        per_lb: list[Future[list[Endpoint]]] = []
        try:
            # A page's load balancers are read while the next page is fetched.
            for page in client.get_paginator("describe_load_balancers").paginate(
                PaginationConfig={"PageSize": 400}
            ):
                for raw in page["LoadBalancers"]:
                    if raw.get("Type") in ("application", "network"):
                        lb = dict(raw)
                        balancers.append(lb)
                        per_lb.append(
                            pool.submit(_load_balancer_endpoints, client, region, lb, policy.http2)
                        )
                progress.update(key, f"reading listeners of {len(balancers)} load balancers")
            endpoints = [endpoint for future in per_lb for endpoint in future.result()]
            catalog = catalog_future.result()
            target_groups = target_groups_future.result()
        except BaseException:
            # One failure fails the region: do not spend the rate limit on the queued reads.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        wanted = {lb["LoadBalancerArn"] for lb in balancers}
        for tg in target_groups:
            if wanted.intersection(tg.get("LoadBalancerArns", [])):
                endpoints.append(_target_group_endpoint(region, tg))
    progress.done(
        key,
        f"{len(balancers)} load balancers, "
        f"{sum(1 for e in endpoints if e.kind == Kind.LISTENER)} TLS listeners",
    )
    return endpoints, catalog


class _Errors:
    """Turn botocore failures into one-line `DiscoveryError`s naming the region."""

    def __init__(self, region: str) -> None:
        self.region = region

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, NoCredentialsError):
            raise DiscoveryError("no AWS credentials found") from None
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            raise DiscoveryError(
                f"AWS {self.region}: {error.get('Code', 'error')}: {error.get('Message', exc)}"
            ) from None
        if isinstance(exc, (BotoCoreError, ResponseParserError)):
            raise DiscoveryError(f"AWS {self.region}: {failure_message(exc)}") from None


def failure_message(exc: BotoCoreError | ResponseParserError) -> str:
    """A transport or parsing failure as one line naming the endpoint where botocore says it."""
    if isinstance(exc, ResponseParserError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"the API's answer could not be read (cut off or malformed): {first}"
    if isinstance(exc, ReadTimeoutError):
        return f"{exc} (no answer; {READ_HINT})"
    return str(exc)


READ_HINT = "REMEDIATE_READ_TIMEOUT and REMEDIATE_TIMEOUT set how long to wait"


def _ssl_policies(client: ElasticLoadBalancingv2Client) -> list[SslPolicy]:
    policies: list[SslPolicy] = []
    marker: str | None = None
    while True:
        page = (
            client.describe_ssl_policies(Marker=marker)
            if marker
            else client.describe_ssl_policies()
        )
        policies.extend(SslPolicy.from_api(raw) for raw in page["SslPolicies"])
        marker = page.get("NextMarker")
        if not marker:
            return policies


def _target_groups(client: ElasticLoadBalancingv2Client) -> list[dict[str, Any]]:
    return [
        dict(tg)
        for page in client.get_paginator("describe_target_groups").paginate(
            PaginationConfig={"PageSize": 400}
        )
        for tg in page["TargetGroups"]
    ]


def _load_balancer_endpoints(
    client: ElasticLoadBalancingv2Client, region: str, lb: dict[str, Any], http2: bool
) -> list[Endpoint]:
    """The TLS listeners of one load balancer and, for an ALB serving HTTPS, its attributes."""
    tls = [
        item
        for item in _listeners(client, lb["LoadBalancerArn"])
        if item.get("Protocol") in TLS_PROTOCOLS
    ]
    endpoints = [_listener_endpoint(region, lb, item) for item in tls]
    # HTTP/2 only reaches clients over HTTPS, so only those ALBs need their attributes.
    if http2 and lb["Type"] == "application" and tls:
        attributes = read_attributes(client, lb["LoadBalancerArn"])
        endpoints.append(_load_balancer_endpoint(region, lb, attributes))
    return endpoints


def _listeners(client: ElasticLoadBalancingv2Client, arn: str) -> list[dict[str, Any]]:
    paginator = client.get_paginator("describe_listeners")
    return [
        dict(item) for page in paginator.paginate(LoadBalancerArn=arn) for item in page["Listeners"]
    ]


def read_attributes(client: ElasticLoadBalancingv2Client, arn: str) -> dict[str, Any]:
    """The effective values of the attributes remediate manages; a missing key is the default."""
    return effective_attributes(
        client.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    )


def effective_attributes(raw: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The attributes remediate manages, from a `[{Key, Value}]` list; a missing key is the
    default."""
    values = {item["Key"]: item["Value"] for item in raw}
    effective: dict[str, Any] = {}
    for key, default in ATTRIBUTE_DEFAULTS.items():
        value = values.get(key)
        effective[key] = default if value is None else (value.lower() == "true")
    return effective


def listener_settings(listener: Mapping[str, Any]) -> dict[str, Any]:
    alpn = listener.get("AlpnPolicy") or []
    return {
        "protocol": listener["Protocol"],
        "port": listener.get("Port"),
        "ssl_policy": listener.get("SslPolicy"),
        "alpn_policy": alpn[0] if alpn and alpn[0] != "None" else None,
    }


def _lb_name(arn: str) -> str:
    # arn:...:loadbalancer/app/NAME/ID or listener/app/NAME/ID/LID
    parts = arn.split(":", 5)[-1].split("/")
    return parts[2] if len(parts) > 2 else arn


def _listener_endpoint(region: str, lb: Mapping[str, Any], listener: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        provider=NAME,
        resource=listener["ListenerArn"],
        kind=Kind.LISTENER,
        name=f"{lb['LoadBalancerName']}:{listener.get('Port')} {listener['Protocol']}",
        location=region,
        settings=listener_settings(listener),
        context={
            "load_balancer_arn": lb["LoadBalancerArn"],
            "load_balancer_type": lb["Type"],
            "dns_name": lb.get("DNSName"),
        },
    )


def _load_balancer_endpoint(
    region: str, lb: Mapping[str, Any], attributes: dict[str, Any]
) -> Endpoint:
    return Endpoint(
        provider=NAME,
        resource=lb["LoadBalancerArn"],
        kind=Kind.LOAD_BALANCER,
        name=lb["LoadBalancerName"],
        location=region,
        settings=attributes,
        context={"load_balancer_type": lb["Type"], "dns_name": lb.get("DNSName")},
    )


def _target_group_endpoint(region: str, tg: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        provider=NAME,
        resource=tg["TargetGroupArn"],
        kind=Kind.TARGET_GROUP,
        name=tg["TargetGroupName"],
        location=region,
        settings={"protocol_version": tg.get("ProtocolVersion")},
        context={"load_balancers": [_lb_name(arn) for arn in tg.get("LoadBalancerArns", [])]},
    )


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_settings(
    session: Session, resources: Iterable[tuple[str, str, str]]
) -> dict[str, dict[str, Any] | None]:
    """Re-read (resource, kind, region) triples: the settings now, or None when gone."""
    by_region: dict[str, dict[str, list[str]]] = {}
    for resource, kind, region in resources:
        by_region.setdefault(region, {}).setdefault(kind, []).append(resource)
    found: dict[str, dict[str, Any] | None] = {}
    for region, kinds in by_region.items():
        client = session.clients.get(region)
        if client is None:
            raise DiscoveryError(f"AWS {region}: region is not in aws.regions")
        with _Errors(region):
            for batch in _chunks(kinds.get(Kind.LISTENER, []), 20):
                found.update(_read_listeners(client, batch))
            for arn in kinds.get(Kind.LOAD_BALANCER, []):
                found[arn] = _read_attributes_or_none(client, arn)
    return found


def _read_listeners(
    client: ElasticLoadBalancingv2Client, arns: list[str]
) -> dict[str, dict[str, Any] | None]:
    try:
        listeners = client.describe_listeners(ListenerArns=arns)["Listeners"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ListenerNotFound":
            raise
        if len(arns) == 1:
            return {arns[0]: None}
        result: dict[str, dict[str, Any] | None] = {}
        for arn in arns:
            result.update(_read_listeners(client, [arn]))
        return result
    settings: dict[str, dict[str, Any] | None] = dict.fromkeys(arns)
    for item in listeners:
        settings[item["ListenerArn"]] = listener_settings(item)
    return settings


def _read_attributes_or_none(
    client: ElasticLoadBalancingv2Client, arn: str
) -> dict[str, Any] | None:
    try:
        return read_attributes(client, arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "LoadBalancerNotFound":
            return None
        raise


def read_classic(
    session: Session, listeners: Mapping[str, ClassicListenerTarget]
) -> dict[str, dict[str, Any] | None]:
    """Re-read Classic listeners (resource -> target): the settings now, or None when gone."""
    by_region: dict[str, list[tuple[str, ClassicListenerTarget]]] = {}
    for resource, target in listeners.items():
        by_region.setdefault(target.region, []).append((resource, target))
    found: dict[str, dict[str, Any] | None] = {}
    for region, group in by_region.items():
        client = session.classic.get(region)
        if client is None:
            raise DiscoveryError(f"AWS {region}: region is not in aws.regions")
        with _Errors(region):
            found.update(classic.read(client, group))
    return found


def read_api_domains(
    session: Session, domains: Mapping[str, ApiDomainTarget]
) -> dict[str, dict[str, Any] | None]:
    """Re-read HTTP/WebSocket API domains (resource -> target): settings now, None when gone."""
    found: dict[str, dict[str, Any] | None] = {}
    for resource, target in domains.items():
        client = session.http_apis.get(target.region)
        if client is None:
            raise DiscoveryError(f"AWS {target.region}: region is not in aws.regions")
        with _Errors(target.region):
            found.update(apigateway.read(client, [(resource, target)]))
    return found


def read_rest(
    session: Session, targets: Mapping[str, RestDomainTarget | RestApiTarget]
) -> dict[str, dict[str, Any] | None]:
    """Re-read REST APIs and REST custom domains (resource -> target): settings now, None when
    gone."""
    found: dict[str, dict[str, Any] | None] = {}
    for resource, target in targets.items():
        client = session.rest_apis.get(target.region)
        if client is None:
            raise DiscoveryError(f"AWS {target.region}: region is not in aws.regions")
        with _Errors(target.region):
            found.update(restapi.read(client, [(resource, target)]))
    return found
