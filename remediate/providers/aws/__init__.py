"""AWS Elastic Load Balancing: ALB HTTPS and NLB TLS listeners, ALB HTTP/2, target group
protocol risks (ELBv2), Classic Load Balancer HTTPS/SSL listeners, and API Gateway custom domains
(REST, HTTP and WebSocket) and REST APIs.

Classic listeners are kinds of this provider rather than a provider of their own: they share the
`aws` section (regions, credentials), the rate limit and the boto3 executor, and a user fixing
"the AWS load balancers" should not need two sections and two `--only` names.

Discovery (`discover`), rules (`rules`), the boto3 executor (`executor`) and the Pulumi mapping
(`pulumi`) are imported only when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from remediate.provider import ExecutorFactory, Permissions, Provider, RuleInfo, Severity
from remediate.providers.aws.model import (
    ApiDomainTarget,
    AWSSettings,
    ClassicListenerTarget,
    InAccount,
    Kind,
    ListenerTarget,
    LoadBalancerTarget,
    RestApiTarget,
    RestDomainTarget,
)
from remediate.targets import Target

if TYPE_CHECKING:
    from remediate.executors import Executor, Settings
    from remediate.inventory import Inventory
    from remediate.model import Change, Endpoint
    from remediate.policy import Policy
    from remediate.progress import Progress
    from remediate.pulumi.remediation import Declaration
    from remediate.rules import Verdict
    from remediate.units import Unit
    from remediate.verification import Expectation

DOCS = "https://docs.aws.amazon.com/elasticloadbalancing/latest"
APIGW = "https://docs.aws.amazon.com/apigateway/latest/developerguide/"


def _boto3(settings: Settings, progress: Progress) -> Executor:
    from remediate.providers.aws.executor import Boto3Executor

    return Boto3Executor(progress, settings.section("aws", AWSSettings))


def _pulumi(settings: Settings, progress: Progress) -> Executor:
    from remediate.executors.pulumi import PulumiExecutor

    return PulumiExecutor(settings, progress)


class AWS(Provider):
    name = "aws"
    title = "AWS load balancers (ELBv2 and Classic), API Gateway REST APIs and custom domains"
    section = AWSSettings
    kinds = tuple(Kind)
    default_executor = "boto3"
    rules = (
        RuleInfo(
            "aws-elb-tls-floor",
            "Listener security policy accepts TLS below the minimum",
            Severity.HIGH,
            "Replace the security policy with the best one describe_ssl_policies offers whose "
            "protocols all meet tls.minimum (or aws.ssl_policy).",
            f"{DOCS}/application/describe-ssl-policies.html",
        ),
        RuleInfo(
            "aws-elb-fips",
            "Listener is not on a FIPS security policy (aws.fips)",
            Severity.HIGH,
            "Replace the security policy with the best FIPS policy describe_ssl_policies offers "
            "for the load balancer type.",
            f"{DOCS}/application/describe-ssl-policies.html#fips-security-policies",
        ),
        RuleInfo(
            "aws-alb-http2",
            "ALB has HTTP/2 switched off",
            Severity.MEDIUM,
            "Set the load balancer attribute routing.http2.enabled to true.",
            f"{DOCS}/application/application-load-balancers.html#load-balancer-attributes",
        ),
        RuleInfo(
            "aws-nlb-alpn-h2",
            "NLB TLS listener has no ALPN policy",
            Severity.LOW,
            "Set the listener's ALPN policy to HTTP2Preferred (HTTP/1.1 clients keep working).",
            f"{DOCS}/network/create-tls-listener.html#alpn-policies",
        ),
        RuleInfo(
            "aws-elb-unknown-policy",
            "Listener uses a security policy the API does not describe",
            Severity.MEDIUM,
            "Check the listener's security policy by hand; remediate cannot tell its protocols.",
            f"{DOCS}/application/describe-ssl-policies.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-nlb-alpn-http1-only",
            "NLB listener pins clients to HTTP/1.1",
            Severity.LOW,
            "HTTP1Only is kept as a deliberate choice; switch to HTTP2Preferred if it is not.",
            f"{DOCS}/network/create-tls-listener.html#alpn-policies",
            fixes=False,
        ),
        RuleInfo(
            "aws-tg-backend-protocol",
            "Target group sends HTTP/2 or gRPC to its targets",
            Severity.MEDIUM,
            "Confirm the targets speak HTTP/2, or set the target group's ProtocolVersion to HTTP1.",
            f"{DOCS}/application/load-balancer-target-groups.html#target-group-protocol-version",
            fixes=False,
        ),
        RuleInfo(
            "aws-clb-tls-floor",
            "Classic listener's negotiation policy accepts TLS below the minimum",
            Severity.HIGH,
            "Give the listener a negotiation policy referencing the most compatible predefined "
            "ELBSecurityPolicy that meets tls.minimum, keeping its other policies.",
            f"{DOCS}/classic/elb-security-policy-table.html",
        ),
        RuleInfo(
            "aws-clb-unknown-policy",
            "Classic listener's negotiation policy cannot be read",
            Severity.MEDIUM,
            "Check the listener's negotiation policy by hand; remediate cannot tell its protocols.",
            f"{DOCS}/classic/elb-ssl-security-policy.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-clb-no-policy-meets",
            "No Classic ELB policy meets the minimum",
            Severity.HIGH,
            "Classic Load Balancers have no TLS 1.3 policy: move the listener to an ALB or NLB.",
            f"{DOCS}/classic/elb-security-policy-table.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-apigw-tls-floor",
            "HTTP/WebSocket API custom domain accepts TLS below the minimum",
            Severity.HIGH,
            "Set each weak domain configuration's SecurityPolicy to the most compatible value "
            "the service model offers that meets tls.minimum (TLS_1_2 for 1.2).",
            "https://docs.aws.amazon.com/apigateway/latest/developerguide/"
            "http-api-custom-domain-names.html",
        ),
        RuleInfo(
            "aws-apigw-no-policy-meets",
            "No security policy of HTTP/WebSocket API domains meets the minimum",
            Severity.HIGH,
            "HTTP and WebSocket API domains offer TLS_1_0 and TLS_1_2 only; front the API "
            "with something that can require TLS 1.3.",
            "https://docs.aws.amazon.com/apigateway/latest/developerguide/"
            "http-api-custom-domain-names.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-apigw-rest-tls-floor",
            "REST API or REST custom domain accepts TLS below the minimum",
            Severity.HIGH,
            "Set its securityPolicy to the most compatible value of the service model's "
            "SecurityPolicy enum its endpoint type may take that meets tls.minimum (or "
            "aws.api_security_policy), with aws.endpoint_access_mode for an enhanced policy.",
            f"{APIGW}apigateway-security-policies.html",
        ),
        RuleInfo(
            "aws-apigw-rest-no-policy-meets",
            "No security policy of a REST API or REST custom domain meets the minimum",
            Severity.HIGH,
            "No policy the API offers for the endpoint type meets tls.minimum (or aws.fips): "
            "change the endpoint type or front the API with something that can.",
            f"{APIGW}apigateway-security-policies-list.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-apigw-rest-unknown-policy",
            "REST API or REST custom domain has a security policy remediate cannot read",
            Severity.MEDIUM,
            "Check its securityPolicy by hand; remediate cannot tell which TLS versions it "
            "accepts.",
            f"{APIGW}apigateway-security-policies-list.html",
            fixes=False,
        ),
        RuleInfo(
            "aws-apigw-rest-mixed-endpoints",
            "Weak REST custom domain with several endpoint types",
            Severity.HIGH,
            "API Gateway cannot update the security policy of a domain with several endpoint "
            "types: give it one endpoint type, then run remediate again.",
            f"{APIGW}apigateway-custom-domain-tls-version.html",
            fixes=False,
        ),
    )
    permissions = Permissions(
        system="aws-iam",
        read=(
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeSSLPolicies",
            "elasticloadbalancing:DescribeLoadBalancerPolicies",
            "sts:GetCallerIdentity",
            "apigateway:GET",
            # Many accounts: the calls of the credentials' own (management) account.
            "sts:AssumeRole",
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent",
            "organizations:ListTagsForResource",
        ),
        write=(
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:CreateLoadBalancerPolicy",
            "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
            "apigateway:PATCH",
        ),
    )

    def executors(self) -> Mapping[str, ExecutorFactory]:
        return {"boto3": _boto3, "pulumi": _pulumi}

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        from remediate.providers.aws.discover import discover

        return discover(policy, progress)

    def units(self, policy: Policy) -> Sequence[Unit] | None:
        """One unit per account and region when the section names accounts; otherwise the
        credentials' account is read whole, as one unit."""
        from remediate.providers.aws.fleet import units

        return units(policy)

    def discover_unit(self, policy: Policy, unit: Unit, progress: Progress) -> Inventory:
        from remediate.providers.aws.fleet import discover_unit

        return discover_unit(policy, unit, progress)

    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        from remediate.providers.aws.rules import evaluate

        return evaluate(endpoint, policy, facts)

    def target(self, endpoint: Endpoint) -> Target:
        context = endpoint.context
        if endpoint.kind == Kind.LISTENER:
            return ListenerTarget(
                arn=endpoint.resource,
                region=endpoint.location,
                port=int(endpoint.settings["port"]),
                protocol=str(endpoint.settings["protocol"]),
                load_balancer_arn=str(context["load_balancer_arn"]),
                load_balancer_type=str(context["load_balancer_type"]),
                dns_name=str(context.get("dns_name") or ""),
            )
        if endpoint.kind == Kind.CLASSIC_LISTENER:
            return ClassicListenerTarget(
                region=endpoint.location,
                load_balancer_name=str(context["load_balancer_name"]),
                port=int(endpoint.settings["port"]),
                protocol=str(endpoint.settings["protocol"]),
                dns_name=str(context.get("dns_name") or ""),
            )
        if endpoint.kind == Kind.HTTP_API_DOMAIN:
            return ApiDomainTarget(
                region=endpoint.location,
                domain_name=str(context["domain_name"]),
                account=str(context.get("account") or ""),
            )
        if endpoint.kind == Kind.REST_API_DOMAIN:
            return RestDomainTarget(
                region=endpoint.location,
                domain_name=str(context["domain_name"]),
                domain_name_id=str(context.get("domain_name_id") or ""),
                account=str(context.get("account") or ""),
            )
        if endpoint.kind == Kind.REST_API:
            return RestApiTarget(
                region=endpoint.location,
                api_id=str(context["api_id"]),
                account=str(context.get("account") or ""),
            )
        if endpoint.kind == Kind.LOAD_BALANCER:
            return LoadBalancerTarget(
                arn=endpoint.resource,
                region=endpoint.location,
                load_balancer_type=str(context["load_balancer_type"]),
                dns_name=str(context.get("dns_name") or ""),
            )
        raise ValueError(f"{endpoint.resource}: AWS changes no {endpoint.kind}")

    def expectations(self, changes: Sequence[Change], policy: Policy) -> Iterable[Expectation]:
        from remediate.verification import Expectation
        from remediate.verify import Target

        for change in changes:
            target = change.target
            if (
                not isinstance(target, ListenerTarget | ClassicListenerTarget)
                or not target.dns_name
            ):
                continue
            yield Expectation(
                change.resource,
                Target(target.dns_name, target.port),
                check_tls=True,
                http2=any(
                    c.resource == change.resource and c.attribute == "alpn_policy" for c in changes
                ),
            )

    def declaration(self, change: Change) -> Declaration:
        from remediate.providers.aws.pulumi import declaration

        return declaration(change)

    def unit(self, change: Change) -> str:
        """The account and region of the resource (its ARN carries both): one runner at a time
        writes to an account's region."""
        parts = change.resource.split(":")
        if len(parts) > 5 and parts[0] == "arn" and parts[4]:
            return f"aws:{parts[4]}:{parts[3]}"
        if isinstance(change.target, InAccount) and change.target.account:
            # An API Gateway ARN names no account; its target does, once accounts are named.
            return f"aws:{change.target.account}:{change.target.region}"
        region = getattr(change.target, "region", "")
        return f"aws:{region}:{change.resource}" if region else super().unit(change)

    def migrate_v1(self, kind: str, change: Mapping[str, Any]) -> Target:
        context: Mapping[str, Any] = change.get("context") or {}
        common = {
            "arn": change["resource"],
            "region": change.get("location", ""),
            "load_balancer_type": context.get("load_balancer_type", ""),
            "dns_name": context.get("dns_name") or "",
        }
        if kind == Kind.LISTENER:
            name = str(change.get("name", ""))
            port, _, protocol = name.rpartition(":")[2].partition(" ")
            return ListenerTarget(
                **common,
                port=int(port) if port.isdigit() else 0,
                protocol=protocol,
                load_balancer_arn=context.get("load_balancer_arn", ""),
            )
        return LoadBalancerTarget(**common)


PROVIDER = AWS()
