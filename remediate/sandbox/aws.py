"""An in-process moto server over real HTTP, and a realistic mixed ELBv2 fleet to seed it with.

boto3 reaches it exactly as it reaches AWS: through `AWS_ENDPOINT_URL`, which botocore honours.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import boto3

SANDBOX_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Settings that would point boto3 at a real account's profile instead of the sandbox.
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")


class _WhileServing:
    """What a sandbox moto server changes in its process, only while one runs.

    - moto's modify_listener drops AlpnPolicy; the real API applies it: moto's handler is wrapped
      to apply it.
    - werkzeug logs every request moto serves: its logger is quieted to errors.
    - moto's ELBv2 security policies are its own list (no FIPS, FS or RFC 9151 policies, no
      SupportedLoadBalancerTypes, and one wrong cipher list): it serves and accepts the published
      catalog instead (`_published_ssl_policies`).
    - moto's Classic ELB policy calls are made strict (`_strict_classic_policies`), its
      apigatewayv2 gets an UpdateDomainName checked against botocore's model
      (`_update_http_api_domains`), and its apigateway the security policy updates of REST
      APIs and REST custom domains (`_rest_security_policies`).
    - moto's STS assumes any role, existing or not; the real one only a role whose trust policy
      lets the caller in (`org.strict_assume_role`).

    moto serves every server of a process from the same backends and handler classes, so both are
    counted: the first server to start applies them, the last to stop puts the originals back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._original: Any = None
        self._log_level = logging.NOTSET
        self._restore: list[Callable[[], None]] = []

    def acquire(self) -> None:
        from moto.elbv2.responses import ELBV2Response

        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            original = self._original = ELBV2Response.modify_listener

            def modify_listener(handler: Any) -> Any:
                result = original(handler)
                alpn = handler._get_params().get("AlpnPolicy")
                if alpn is not None:
                    arn = handler._get_param("ListenerArn")
                    listener = handler.elbv2_backend.describe_listeners(None, [arn])[0]
                    listener.alpn_policy = list(alpn)
                return result

            setattr(ELBV2Response, "modify_listener", modify_listener)  # noqa: B010
            log = logging.getLogger("werkzeug")
            self._log_level = log.level
            log.setLevel(logging.ERROR)
            from remediate.sandbox.org import strict_assume_role

            self._restore = [
                _published_ssl_policies(),
                _strict_classic_policies(),
                _update_http_api_domains(),
                _rest_security_policies(),
                strict_assume_role(),
            ]

    def release(self) -> None:
        from moto.elbv2.responses import ELBV2Response

        with self._lock:
            self._users -= 1
            if self._users == 0:
                setattr(ELBV2Response, "modify_listener", self._original)  # noqa: B010
                self._original = None
                logging.getLogger("werkzeug").setLevel(self._log_level)
                for restore in self._restore:
                    restore()
                self._restore = []


_WHILE_SERVING = _WhileServing()


CLASSIC_PROTOCOLS = ("Protocol-SSLv3", "Protocol-TLSv1", "Protocol-TLSv1.1", "Protocol-TLSv1.2")
NEGOTIATION = "SSLNegotiationPolicyType"
REFERENCE = "Reference-Security-Policy"


def classic_predefined() -> dict[str, list[dict[str, str]]]:
    """The Classic ELB predefined policies the sandbox serves, as attribute descriptions."""
    raw = json.loads(
        resources.files("remediate.pulumi").joinpath("data/classic-elb-policies.json").read_text()
    )
    return {
        name: [
            {"AttributeName": protocol, "AttributeValue": str(protocol in enabled).lower()}
            for protocol in CLASSIC_PROTOCOLS
        ]
        + [{"AttributeName": "Server-Defined-Cipher-Order", "AttributeValue": "true"}]
        for name, enabled in raw["policies"].items()
    }


def _published_ssl_policies() -> Callable[[], None]:
    """Serve the ELBv2 security policies AWS publishes instead of moto's own list.

    moto 5's list (moto/elbv2/ssl_policies.py) lacks every FIPS, FS (but one) and RFC 9151
    policy, copies ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09's ciphers from Ext2, and its
    describe_ssl_policies leaves SupportedLoadBalancerTypes out; modify_listener refuses any policy
    outside that list with SSLPolicyNotFound. The bundled catalog (remediate/pulumi/data/
    elb-ssl-policies.json, rebuilt from AWS's published tables) replaces it while a sandbox server
    runs; moto's module keeps its own list. Returns what puts moto's back.
    """
    from moto.elbv2 import responses

    document = json.loads(
        resources.files("remediate.pulumi").joinpath("data/elb-ssl-policies.json").read_text()
    )
    published = {
        raw["Name"]: {
            "name": raw["Name"],
            "ciphers": [c["Name"] for c in sorted(raw["Ciphers"], key=lambda c: c["Priority"])],
            "ssl_protocols": raw["SslProtocols"],
            "types": raw["SupportedLoadBalancerTypes"],
        }
        for raw in document["SslPolicies"]
    }
    original_policies = getattr(responses, "SSL_POLICIES")  # noqa: B009
    original_build = getattr(responses, "build_policy")  # noqa: B009

    def build_policy(name: str, data: dict[str, Any]) -> dict[str, object] | None:
        built: dict[str, object] | None = original_build(name, data)
        if built is not None:
            built["SupportedLoadBalancerTypes"] = data["types"]
        return built

    setattr(responses, "SSL_POLICIES", published)  # noqa: B010
    setattr(responses, "build_policy", build_policy)  # noqa: B010

    def restore() -> None:
        setattr(responses, "SSL_POLICIES", original_policies)  # noqa: B010
        setattr(responses, "build_policy", original_build)  # noqa: B010

    return restore


def _strict_classic_policies() -> Callable[[], None]:
    """Make moto's Classic ELB policy calls answer and refuse as the real API does.

    moto 5 serves no predefined policies, accepts a duplicate policy name silently, stores a
    negotiation policy's attributes as given, and lets a listener name policies that do not exist.
    Real ELB lists the predefined policies when describe_load_balancer_policies has no load
    balancer name, fails CreateLoadBalancerPolicy with DuplicatePolicyName, expands a
    Reference-Security-Policy into the referenced policy's attributes, and fails
    SetLoadBalancerPoliciesOfListener with PolicyNotFound or ListenerNotFound. Returns what puts
    moto's own handlers back.
    """
    from moto.core.responses import EmptyResult
    from moto.elb.exceptions import ELBClientError, PolicyNotFoundError
    from moto.elb.models import ELBBackend
    from moto.elb.policies import OtherPolicy
    from moto.elb.responses import ELBResponse

    predefined = classic_predefined()
    describe = ELBBackend.describe_load_balancer_policies
    create = ELBBackend.create_load_balancer_policy

    def describe_policies(self: Any, lb_name: str, policy_names: list[str]) -> Any:
        if lb_name:
            return describe(self, lb_name, policy_names)
        names = policy_names or list(predefined)
        missing = [name for name in names if name not in predefined]
        if missing:
            raise PolicyNotFoundError()
        return [OtherPolicy(name, NEGOTIATION, predefined[name]) for name in names]

    def create_policy(
        self: Any,
        load_balancer_name: str,
        policy_name: str,
        policy_type_name: str,
        policy_attrs: list[dict[str, str]],
    ) -> Any:
        balancer = self.get_load_balancer(load_balancer_name)
        if any(policy.policy_name == policy_name for policy in balancer.policies):
            raise ELBClientError(
                "DuplicatePolicyName", f"Policy {policy_name} already exists for this load balancer"
            )
        attributes = {a["AttributeName"]: a["AttributeValue"] for a in policy_attrs or []}
        reference = attributes.get(REFERENCE)
        if policy_type_name == NEGOTIATION and reference is not None:
            if reference not in predefined:
                raise ELBClientError(
                    "InvalidConfigurationRequest", f"Unknown reference policy {reference}"
                )
            policy_attrs = [
                *predefined[reference],
                {"AttributeName": REFERENCE, "AttributeValue": reference},
            ]
        return create(self, load_balancer_name, policy_name, policy_type_name, policy_attrs)

    def assign_policies(self: Any) -> Any:
        name = self._get_param("LoadBalancerName")
        port = int(self._get_param("LoadBalancerPort"))
        balancer = self.elb_backend.get_load_balancer(name)
        if balancer is None:
            raise ELBClientError(
                "LoadBalancerNotFound", f"There is no ACTIVE Load Balancer named '{name}'"
            )
        if not any(int(item.load_balancer_port) == port for item in balancer.listeners):
            raise ELBClientError("ListenerNotFound", f"There is no ACTIVE Listener for port {port}")
        policies = self._get_param("PolicyNames", [])
        known = {policy.policy_name for policy in balancer.policies}
        if any(policy not in known for policy in policies):
            raise PolicyNotFoundError()
        self.elb_backend.set_load_balancer_policies_of_listener(name, port, policies)
        return EmptyResult()

    replaced = [
        (ELBBackend, "describe_load_balancer_policies", describe_policies),
        (ELBBackend, "create_load_balancer_policy", create_policy),
        (ELBResponse, "set_load_balancer_policies_of_listener", assign_policies),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in replaced]
    for owner, name, handler in replaced:
        setattr(owner, name, handler)

    def restore() -> None:
        for owner, name, original in originals:
            setattr(owner, name, original)

    return restore


def check_against_model(shape: Any, value: Any, where: str) -> None:
    """Refuse `value` (a rest-json body, wire names) that does not fit botocore's `shape`: an
    unknown member, a missing required one, a wrong type or a value outside an enum.

    Raises ValueError naming the offending path; members bound to the URI, query or headers are
    not part of a body and are skipped."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        body = {
            member.serialization.get("name", name): (name, member)
            for name, member in shape.members.items()
            if not member.serialization.get("location")
        }
        for key in value:
            if key not in body:
                raise ValueError(f"{where}.{key}: unknown member")
        for name in shape.required_members:
            member = shape.members[name]
            wire = member.serialization.get("name", name)
            if not member.serialization.get("location") and wire not in value:
                raise ValueError(f"{where}.{wire}: required member is missing")
        for key, item in value.items():
            check_against_model(body[key][1], item, f"{where}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        for index, item in enumerate(value):
            check_against_model(shape.member, item, f"{where}[{index}]")
    elif kind == "map":
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a map")
        for key, item in value.items():
            check_against_model(shape.value, item, f"{where}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string")
        if shape.enum and value not in shape.enum:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
    elif kind == "boolean" and not isinstance(value, bool):
        raise ValueError(f"{where}: expected a boolean")
    elif kind in ("integer", "long") and not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer")


def _update_http_api_domains() -> Callable[[], None]:
    """Give moto's apigatewayv2 the UpdateDomainName it lacks, strict as the real API.

    The request body is checked against botocore's own model of the operation (members, required
    members, types, enums such as SecurityPolicy), and `domainNameConfigurations` replaces the
    domain's configurations as a whole, as the real API does.
    """
    import botocore.session
    from moto.apigatewayv2.exceptions import BadRequestException
    from moto.apigatewayv2.responses import ApiGatewayV2Response

    operation = botocore.session.get_session().get_service_model("apigatewayv2")
    request = operation.operation_model("UpdateDomainName").input_shape

    def update_domain_name(self: Any) -> Any:
        name = urllib.parse.unquote(self.path.rstrip("/").split("/")[-1])
        try:
            body = json.loads(self.body or "{}")
            check_against_model(request, body, "UpdateDomainNameRequest")
        except (ValueError, json.JSONDecodeError) as exc:
            raise BadRequestException(str(exc)) from None
        domain = self.apigatewayv2_backend.get_domain_name(domain_name=name)
        if "domainNameConfigurations" in body:
            domain.domain_name_configurations = body["domainNameConfigurations"]
        return 200, {}, json.dumps(domain.to_json())

    setattr(ApiGatewayV2Response, "update_domain_name", update_domain_name)  # noqa: B010

    def restore() -> None:
        delattr(ApiGatewayV2Response, "update_domain_name")

    return restore


# How long a REST API or domain stays UPDATING after a security policy update. Real API Gateway
# takes about 15 minutes; the sandbox keeps the status observable without holding a demo up.
REST_UPDATING_SECONDS = 2.0
_PATHS = {"/securityPolicy": "SecurityPolicy", "/endpointAccessMode": "EndpointAccessMode"}


def _rest_security_policies() -> Callable[[], None]:
    """Give moto's apigateway the security policy updates it stores but does not implement.

    moto's DomainName keeps the securityPolicy it was created with but has no UpdateDomainName
    and no endpointAccessMode; its RestAPI has no securityPolicy at all, and its UpdateRestApi
    ignores unknown paths. The stand-in answers UpdateDomainName and UpdateRestApi patch
    operations on `/securityPolicy` and `/endpointAccessMode` as real API Gateway does:

    - the request is checked against botocore's model of the operation (members, required
      members, types; the `op` enum) and each value against its enum in the same model
      (`SecurityPolicy`, `EndpointAccessMode`);
    - an enhanced policy (`SecurityPolicy_*`) needs an endpoint access mode, sent with it or set
      before; `_EDGE` policies fit edge-optimized endpoints only, the other enhanced ones
      Regional and private endpoints only;
    - a domain with several endpoint types cannot be updated;
    - the resource reports `UPDATING` (domainNameStatus, apiStatus) for a while afterwards.

    Other paths are refused with a message saying the stand-in does not serve them.
    """
    import botocore.session
    from moto.apigateway.exceptions import BadRequestException
    from moto.apigateway.models import DomainName, RestAPI
    from moto.apigateway.responses import APIGatewayResponse

    model = botocore.session.get_session().get_service_model("apigateway")
    shapes = {
        "UpdateDomainName": model.operation_model("UpdateDomainName").input_shape,
        "UpdateRestApi": model.operation_model("UpdateRestApi").input_shape,
    }
    domain_json = DomainName.to_json
    api_dict = RestAPI.to_dict
    update_api = APIGatewayResponse.update_rest_api

    def status(resource: Any) -> str:
        updating = getattr(resource, "updating_until", 0) > time.monotonic()
        return "UPDATING" if updating else "AVAILABLE"

    def domain_to_json(self: Any) -> dict[str, Any]:
        found: dict[str, Any] = domain_json(self)
        found["domainNameStatus"] = status(self)
        if getattr(self, "endpoint_access_mode", None):
            found["endpointAccessMode"] = self.endpoint_access_mode
        return found

    def api_to_dict(self: Any) -> dict[str, Any]:
        found: dict[str, Any] = api_dict(self)
        found["apiStatus"] = status(self)
        for key, attribute in (
            ("securityPolicy", "security_policy"),
            ("endpointAccessMode", "endpoint_access_mode"),
        ):
            if getattr(self, attribute, None):
                found[key] = getattr(self, attribute)
        return found

    def patch(operation: str, body_text: str | bytes | None, resource: Any) -> None:
        try:
            body = json.loads(body_text or "{}")
            check_against_model(shapes[operation], body, f"{operation}Request")
        except (ValueError, json.JSONDecodeError) as exc:
            raise BadRequestException(str(exc)) from None
        wanted: dict[str, str] = {}
        for index, item in enumerate(body.get("patchOperations", [])):
            path = item.get("path")
            if path not in _PATHS:
                raise BadRequestException(
                    f"patchOperations[{index}].path {path!r}: the sandbox serves only "
                    f"{', '.join(_PATHS)}"
                )
            if item.get("op") != "replace" or "value" not in item:
                raise BadRequestException(f"patchOperations[{index}]: expected op replace, value")
            enum: list[str] = getattr(model.shape_for(_PATHS[path]), "enum", [])
            if item["value"] not in enum:
                raise BadRequestException(
                    f"Invalid {path[1:]} {item['value']!r}: expected one of {', '.join(enum)}"
                )
            wanted[path] = item["value"]
        types = list((resource.endpoint_configuration or {}).get("types") or [])
        if len(types) != 1:
            raise BadRequestException(
                f"Cannot update the security policy of a resource with endpoint types {types}"
            )
        policy = wanted.get("/securityPolicy", getattr(resource, "security_policy", None))
        mode = wanted.get("/endpointAccessMode", getattr(resource, "endpoint_access_mode", None))
        if isinstance(policy, str) and policy.startswith("SecurityPolicy_"):
            if not mode:
                raise BadRequestException(
                    f"Security policy {policy} requires an endpoint access mode (BASIC or STRICT)"
                )
            if policy.endswith("_EDGE") != (types[0] == "EDGE"):
                raise BadRequestException(
                    f"Security policy {policy} is not supported for {types[0]} endpoints"
                )
        resource.security_policy = policy
        resource.endpoint_access_mode = mode
        resource.updating_until = time.monotonic() + REST_UPDATING_SECONDS

    def update_domain_name(self: Any) -> Any:
        name = urllib.parse.unquote(self.path.rstrip("/").split("/")[-1])
        domain = self.backend.get_domain_name(name)
        patch("UpdateDomainName", self.body, domain)
        return 200, {}, json.dumps(domain.to_json())

    def update_rest_api(self: Any) -> Any:
        paths = {item.get("path") for item in self._get_param("patchOperations") or []}
        if not paths & set(_PATHS):
            return update_api(self)
        api_id = self.path.replace("/restapis/", "", 1).split("/")[0]
        api = self.backend.get_rest_api(api_id)
        patch("UpdateRestApi", self.body, api)
        return 200, {}, json.dumps(api.to_dict())

    replaced = [
        (DomainName, "to_json", domain_to_json),
        (RestAPI, "to_dict", api_to_dict),
        (APIGatewayResponse, "update_rest_api", update_rest_api),
    ]
    for owner, name, handler in replaced:
        setattr(owner, name, handler)
    setattr(APIGatewayResponse, "update_domain_name", update_domain_name)  # noqa: B010

    def restore() -> None:
        setattr(DomainName, "to_json", domain_json)  # noqa: B010
        setattr(RestAPI, "to_dict", api_dict)  # noqa: B010
        setattr(APIGatewayResponse, "update_rest_api", update_api)  # noqa: B010
        delattr(APIGatewayResponse, "update_domain_name")

    return restore


class MotoServer:
    """A moto server on a free loopback port, in a thread of this process, until `stop()`."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        _WHILE_SERVING.acquire()
        try:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
        except BaseException:
            _WHILE_SERVING.release()
            raise
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (ours or a subprocess's) at this server."""
        return {**SANDBOX_ENV, "AWS_ENDPOINT_URL": self.url}

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        # A reset is CPU work in this process (every backend and model instance is dropped): on a
        # loaded two-core machine it took more than 10 s, so the bound is generous.
        with urllib.request.urlopen(request, timeout=120):
            pass

    def stop(self) -> None:
        self._server.stop()
        _WHILE_SERVING.release()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, without the ambient AWS profile settings;
    every variable touched is put back as it was afterwards, and no other is."""
    touched = {*PROFILE_VARIABLES, *values}
    saved = {name: os.environ.get(name) for name in touched}
    for name in PROFILE_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Fleet:
    """Handles to what `seed_fleet` created, by short name."""

    load_balancers: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, str] = field(default_factory=dict)
    target_groups: dict[str, str] = field(default_factory=dict)
    classic: dict[str, str] = field(default_factory=dict)
    """Classic ELB listeners ("shop-classic:443") -> their resource id in a plan."""
    api_domains: dict[str, str] = field(default_factory=dict)
    """HTTP/WebSocket API custom domains -> their ARN."""
    rest: dict[str, str] = field(default_factory=dict)
    """REST custom domains (by name) and REST APIs (by API name) -> their resource id."""


class FleetBuilder:
    """Creates load balancers the way a team's CloudFormation would, one region at a time."""

    def __init__(self, region: str, fleet: Fleet | None = None, session: Any = None) -> None:
        """`session`: a boto3 session to create them with (another account's); boto3's
        default one otherwise."""
        self.region = region
        self.fleet = fleet or Fleet()
        maker: Any = session or boto3
        self.elbv2: Any = maker.client("elbv2", region_name=region)
        ec2 = maker.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        self.vpc = vpc
        self.subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)[
                "Subnet"
            ]["SubnetId"]
            for index, zone in enumerate(zones[:2])
        ]
        acm = maker.client("acm", region_name=region)
        self.certificate = acm.request_certificate(DomainName=f"*.{region}.example.com")[
            "CertificateArn"
        ]

    def load_balancer(self, name: str, kind: str = "application") -> str:
        arn: str = self.elbv2.create_load_balancer(
            Name=name, Subnets=self.subnets, Type=kind, Scheme="internet-facing"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.fleet.load_balancers[name] = arn
        return arn

    def target_group(self, name: str, protocol: str = "HTTP", version: str | None = None) -> str:
        extra: dict[str, Any] = {"ProtocolVersion": version} if version else {}
        arn: str = self.elbv2.create_target_group(
            Name=name, Protocol=protocol, Port=8080, VpcId=self.vpc, TargetType="ip", **extra
        )["TargetGroups"][0]["TargetGroupArn"]
        self.fleet.target_groups[name] = arn
        return arn

    def listener(
        self,
        lb: str,
        port: int,
        protocol: str,
        target_group: str,
        *,
        ssl_policy: str | None = None,
        alpn: str | None = None,
    ) -> str:
        extra: dict[str, Any] = {}
        if protocol in ("HTTPS", "TLS"):
            extra["Certificates"] = [{"CertificateArn": self.certificate}]
            if ssl_policy:
                extra["SslPolicy"] = ssl_policy
        if alpn:
            extra["AlpnPolicy"] = [alpn]
        arn: str = self.elbv2.create_listener(
            LoadBalancerArn=self.fleet.load_balancers[lb],
            Port=port,
            Protocol=protocol,
            DefaultActions=[
                {"Type": "forward", "TargetGroupArn": self.fleet.target_groups[target_group]}
            ],
            **extra,
        )["Listeners"][0]["ListenerArn"]
        self.fleet.listeners[f"{lb}:{port}"] = arn
        return arn

    def classic(self, name: str, listeners: list[tuple[int, str]]) -> None:
        """A Classic Load Balancer with (port, protocol) listeners, HTTPS/SSL ones on the
        certificate, each created without a negotiation policy (see `classic_policy`)."""
        elb: Any = boto3.client("elb", region_name=self.region)
        elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[
                {
                    "Protocol": protocol,
                    "LoadBalancerPort": port,
                    "InstanceProtocol": "HTTP" if protocol in ("HTTP", "HTTPS") else "TCP",
                    "InstancePort": 8080,
                    **(
                        {"SSLCertificateId": self.certificate}
                        if protocol in ("HTTPS", "SSL")
                        else {}
                    ),
                }
                for port, protocol in listeners
            ],
            AvailabilityZones=[f"{self.region}a"],
        )
        for port, protocol in listeners:
            if protocol in ("HTTPS", "SSL"):
                self.fleet.classic[f"{name}:{port}"] = classic_resource(self.region, name, port)

    def classic_policies(self, name: str, port: int, reference: str | None, sticky: bool) -> None:
        """Give a Classic listener the negotiation policy real ELB attaches (named after its
        reference policy) and, with `sticky`, a cookie stickiness policy."""
        elb: Any = boto3.client("elb", region_name=self.region)
        names: list[str] = []
        if reference:
            elb.create_load_balancer_policy(
                LoadBalancerName=name,
                PolicyName=reference,
                PolicyTypeName=NEGOTIATION,
                PolicyAttributes=[{"AttributeName": REFERENCE, "AttributeValue": reference}],
            )
            names.append(reference)
        if sticky:
            elb.create_lb_cookie_stickiness_policy(
                LoadBalancerName=name, PolicyName=f"{name}-sticky", CookieExpirationPeriod=300
            )
            names.append(f"{name}-sticky")
        elb.set_load_balancer_policies_of_listener(
            LoadBalancerName=name, LoadBalancerPort=port, PolicyNames=names
        )

    def attributes(self, lb: str, **values: str) -> None:
        self.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=self.fleet.load_balancers[lb],
            Attributes=[{"Key": key, "Value": value} for key, value in values.items()],
        )


def seed_fleet() -> Fleet:
    """A realistic mixed estate in us-east-1 and eu-west-1 (boto3 must already point at moto).

    - shop (ALB): HTTPS on the API default ELBSecurityPolicy-2016-08, plus an HTTP redirect port
    - api (ALB): compliant TLS policy, but HTTP/2 switched off, and a gRPC target group
    - legacy-pos (ALB): weak policy, excluded by the demo policy until the terminals are upgraded
    - mqtt-edge (NLB): TLS listener on TLS 1.1 with no ALPN policy
    - admin (ALB): one compliant HTTPS listener, one weak on 8443
    """
    fleet = Fleet()
    east = FleetBuilder("us-east-1", fleet)
    east.target_group("shop-web")
    east.target_group("api-grpc", version="GRPC")
    east.target_group("pos-web")
    east.load_balancer("shop")
    east.listener("shop", 443, "HTTPS", "shop-web")  # API default: ELBSecurityPolicy-2016-08
    east.listener("shop", 80, "HTTP", "shop-web")
    east.load_balancer("api")
    east.listener("api", 443, "HTTPS", "api-grpc", ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    east.attributes("api", **{"routing.http2.enabled": "false"})
    east.load_balancer("legacy-pos")
    east.listener("legacy-pos", 443, "HTTPS", "pos-web", ssl_policy="ELBSecurityPolicy-2016-08")

    west = FleetBuilder("eu-west-1", fleet)
    west.target_group("mqtt", protocol="TCP")
    west.target_group("admin-web")
    west.load_balancer("mqtt-edge", kind="network")
    west.listener("mqtt-edge", 8883, "TLS", "mqtt", ssl_policy="ELBSecurityPolicy-TLS-1-1-2017-01")
    west.load_balancer("admin")
    west.listener(
        "admin", 443, "HTTPS", "admin-web", ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06"
    )
    west.listener("admin", 8443, "HTTPS", "admin-web", ssl_policy="ELBSecurityPolicy-2016-08")
    return fleet


def classic_resource(region: str, name: str, port: int) -> str:
    """A Classic listener's id in a plan (what the AWS provider's discovery names it)."""
    return f"arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/{name}/listener/{port}"


def seed_classic_fleet(fleet: Fleet | None = None) -> Fleet:
    """Classic Load Balancers in us-east-1 (boto3 must already point at moto).

    - shop-classic: HTTPS 443 on the API default ELBSecurityPolicy-2016-08 with a cookie
      stickiness policy that must survive, SSL 8443 with no negotiation policy at all (ELB then
      applies ELBSecurityPolicy-2016-08), and HTTP 80
    - partner-classic: HTTPS 443 already on ELBSecurityPolicy-TLS-1-2-2017-01
    """
    fleet = fleet or Fleet()
    east = FleetBuilder("us-east-1", fleet)
    east.classic("shop-classic", [(443, "HTTPS"), (8443, "SSL"), (80, "HTTP")])
    east.classic_policies("shop-classic", 443, "ELBSecurityPolicy-2016-08", sticky=True)
    east.classic("partner-classic", [(443, "HTTPS")])
    east.classic_policies("partner-classic", 443, "ELBSecurityPolicy-TLS-1-2-2017-01", sticky=False)
    return fleet


def seed_api_domains(fleet: Fleet | None = None) -> Fleet:
    """API Gateway custom domains of HTTP/WebSocket APIs in us-east-1 (boto3 must point at moto).

    - ws.shop.example.com: a WebSocket API's domain on TLS_1_0
    - api.shop.example.com: an HTTP API's domain already on TLS_1_2
    """
    fleet = fleet or Fleet()
    client: Any = boto3.client("apigatewayv2", region_name="us-east-1")
    acm = boto3.client("acm", region_name="us-east-1")
    certificate = acm.request_certificate(DomainName="*.shop.example.com")["CertificateArn"]
    for name, policy in (("ws.shop.example.com", "TLS_1_0"), ("api.shop.example.com", "TLS_1_2")):
        created = client.create_domain_name(
            DomainName=name,
            DomainNameConfigurations=[
                {
                    "CertificateArn": certificate,
                    "EndpointType": "REGIONAL",
                    "SecurityPolicy": policy,
                }
            ],
        )
        fleet.api_domains[name] = created["DomainNameArn"]
    return fleet


def seed_rest_apis(fleet: Fleet | None = None) -> Fleet:
    """API Gateway REST APIs and REST custom domains in us-east-1 (boto3 must point at moto).

    - shop.example.com: a Regional REST custom domain on TLS_1_0
    - edge.shop.example.com: an edge-optimized REST custom domain on TLS_1_0
    - partners.example.com: a Regional REST custom domain already on TLS_1_2
    - orders (REST API, Regional): no securityPolicy of its own, so API Gateway applies TLS_1_0
    """
    fleet = fleet or Fleet()
    client: Any = boto3.client("apigateway", region_name="us-east-1")
    acm = boto3.client("acm", region_name="us-east-1")
    certificate = acm.request_certificate(DomainName="*.example.com")["CertificateArn"]
    for name, kind, policy in (
        ("shop.example.com", "REGIONAL", "TLS_1_0"),
        ("edge.shop.example.com", "EDGE", "TLS_1_0"),
        ("partners.example.com", "REGIONAL", "TLS_1_2"),
    ):
        key = "certificateArn" if kind == "EDGE" else "regionalCertificateArn"
        client.create_domain_name(
            domainName=name,
            endpointConfiguration={"types": [kind]},
            securityPolicy=policy,
            **{key: certificate},
        )
        fleet.rest[name] = f"arn:aws:apigateway:us-east-1::/domainnames/{name}"
    api = client.create_rest_api(name="orders", endpointConfiguration={"types": ["REGIONAL"]})
    fleet.rest["orders"] = f"arn:aws:apigateway:us-east-1::/restapis/{api['id']}"
    return fleet
