"""GCP load balancing: SSL policies of global and regional target HTTPS proxies and of target SSL
proxies (SSL proxy load balancers), backend risks.

Discovery and the gcp-api executor need `google-cloud-compute` (the `gcp` extra); they, the rules
and the Pulumi mapping are imported only when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from remediate.provider import ExecutorFactory, Permissions, Provider, RuleInfo, Severity
from remediate.providers.gcp.model import ComputeTarget, GCPSettings, Kind
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

DOCS = "https://cloud.google.com/load-balancing/docs"


def _gcp_api(settings: Settings, progress: Progress) -> Executor:
    from remediate.errors import require

    require("gcp", "the gcp-api executor")
    from remediate.providers.gcp.executor import GcpExecutor

    return GcpExecutor(settings, progress)


def _pulumi(settings: Settings, progress: Progress) -> Executor:
    from remediate.executors.pulumi import PulumiExecutor

    return PulumiExecutor(settings, progress)


class GCP(Provider):
    name = "gcp"
    title = "GCP load balancers"
    extra = "gcp"
    section = GCPSettings
    kinds = tuple(Kind)
    default_executor = "gcp-api"
    rules = (
        RuleInfo(
            "gcp-lb-tls-floor",
            "Target HTTPS or SSL proxy accepts TLS below the minimum",
            Severity.HIGH,
            "Attach the proxy to remediate's SSL policy (gcp.ssl_policy_name), whose "
            "minTlsVersion meets tls.minimum; other SSL policies are never edited.",
            f"{DOCS}/ssl-policies-concepts",
        ),
        RuleInfo(
            "gcp-owned-policy-settings",
            "remediate's SSL policy is missing or drifted",
            Severity.HIGH,
            "Create remediate's SSL policy where a weak proxy needs it, or restore its "
            "minTlsVersion, profile and (when gcp.post_quantum_key_exchange is set) "
            "postQuantumKeyExchange.",
            f"{DOCS}/use-ssl-policies",
        ),
        RuleInfo(
            "gcp-lb-unreadable-policy",
            "A proxy's SSL policy cannot be read",
            Severity.MEDIUM,
            "Check the SSL policy by hand, or grant compute.sslPolicies.get.",
            f"{DOCS}/use-ssl-policies",
            fixes=False,
        ),
        RuleInfo(
            "gcp-custom-profile",
            "An SSL policy uses a CUSTOM profile",
            Severity.LOW,
            "Review the policy's custom features by hand.",
            f"{DOCS}/ssl-policies-concepts#defining_an_ssl_policy",
            fixes=False,
        ),
        RuleInfo(
            "gcp-backend-http2",
            "Backend service sends HTTP/2 to its backends",
            Severity.MEDIUM,
            "Confirm the backends speak HTTP/2, or set the backend service's protocol to HTTP "
            "or HTTPS.",
            f"{DOCS}/https#protocol_to_the_backends",
            fixes=False,
        ),
    )
    permissions = Permissions(
        system="gcp-iam",
        read=(
            "compute.targetHttpsProxies.list",
            "compute.targetHttpsProxies.get",
            "compute.targetSslProxies.list",
            "compute.targetSslProxies.get",
            "compute.regionTargetHttpsProxies.list",
            "compute.regionTargetHttpsProxies.get",
            "compute.sslPolicies.list",
            "compute.sslPolicies.get",
            "compute.regionSslPolicies.list",
            "compute.regionSslPolicies.get",
            "compute.urlMaps.list",
            "compute.regionUrlMaps.list",
            "compute.backendServices.list",
            "compute.regionBackendServices.list",
            # gcp.organization, gcp.folders and project globs (Resource Manager), granted on
            # the organization or folders: search needs .get, the walk of a parent .list.
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
            "resourcemanager.folders.list",
        ),
        write=(
            "compute.sslPolicies.create",
            "compute.sslPolicies.update",
            "compute.sslPolicies.use",
            "compute.sslPolicies.delete",
            "compute.regionSslPolicies.create",
            "compute.regionSslPolicies.update",
            "compute.regionSslPolicies.use",
            "compute.regionSslPolicies.delete",
            "compute.targetHttpsProxies.setSslPolicy",
            "compute.targetSslProxies.setSslPolicy",
            "compute.regionTargetHttpsProxies.update",
            "compute.globalOperations.get",
            "compute.regionOperations.get",
        ),
    )

    def executors(self) -> Mapping[str, ExecutorFactory]:
        return {"gcp-api": _gcp_api, "pulumi": _pulumi}

    def discover(self, policy: Policy, progress: Progress) -> Inventory:
        from remediate.errors import require

        require("gcp", "the gcp provider")
        from remediate.providers.gcp.fleet import discover

        return discover(policy, progress)

    def units(self, policy: Policy) -> Sequence[Unit] | None:
        """One unit per project: the ids of gcp.projects, its globs and the projects of
        gcp.organization and gcp.folders (through Resource Manager), less gcp.exclude."""
        from remediate.errors import require

        require("gcp", "the gcp provider")
        from remediate.providers.gcp.fleet import units

        return units(policy)

    def discover_unit(self, policy: Policy, unit: Unit, progress: Progress) -> Inventory:
        from remediate.providers.gcp.fleet import discover_unit

        return discover_unit(policy, unit, progress)

    def evaluate(self, endpoint: Endpoint, policy: Policy, facts: Mapping[str, Any]) -> Verdict:
        from remediate.providers.gcp.rules import evaluate

        return evaluate(endpoint, policy, facts)

    def target(self, endpoint: Endpoint) -> Target:
        return ComputeTarget(
            link=endpoint.resource,
            api_fingerprint=endpoint.context.get("gcp_fingerprint"),
            url_map=endpoint.context.get("url_map"),
        )

    def declaration(self, change: Change) -> Declaration:
        from remediate.providers.gcp.pulumi import declaration

        return declaration(change)

    def unit(self, change: Change) -> str:
        """The project of the resource (from its selfLink `.../projects/P/...`)."""
        link = getattr(change.target, "link", "") or change.resource
        _, found, rest = link.partition("/projects/")
        return f"gcp:{rest.split('/', 1)[0]}" if found else super().unit(change)

    def migrate_v1(self, kind: str, change: Mapping[str, Any]) -> Target:
        context: Mapping[str, Any] = change.get("context") or {}
        return ComputeTarget(
            link=str(change["resource"]),
            api_fingerprint=context.get("gcp_fingerprint"),
            url_map=context.get("url_map"),
        )


PROVIDER = GCP()
