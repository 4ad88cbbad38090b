"""The demo's GCP world: the local Compute server seeded with a project of weak load balancers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from remediate.sandbox.compute import ComputeServer

DEMO_PROJECT = "demo-shop"


def seed_estate(server: ComputeServer, project: str = DEMO_PROJECT) -> None:
    """A project the way a team's Terraform leaves it.

    - storefront (global): no SSL policy, so Google's default (TLS 1.0)
    - partners (global): a shared policy `partner-compat` on TLS 1.0, which is not remediate's
    - checkout (europe-west1): a regional proxy with no SSL policy
    - its URL map routes /rpc to a backend service that speaks HTTP/2 to its backends (502 risk)
    - mqtt (global target SSL proxy, an SSL proxy load balancer): no SSL policy
    """
    web = server.backend_service(project, "storefront-web")
    web_map = server.url_map(project, "storefront", web)
    server.https_proxy(project, "storefront", web_map)
    partner_policy = server.ssl_policy(project, "partner-compat", "TLS_1_0", "COMPATIBLE")
    server.https_proxy(project, "partners", web_map, partner_policy)
    region = "europe-west1"
    checkout = server.backend_service(project, "checkout-web", region=region)
    rpc = server.backend_service(project, "checkout-rpc", protocol="HTTP2", region=region)
    checkout_map = server.url_map(
        project,
        "checkout",
        checkout,
        region=region,
        hostRules=[{"hosts": ["*"], "pathMatcher": "checkout"}],
        pathMatchers=[
            {
                "name": "checkout",
                "defaultService": checkout,
                "pathRules": [{"paths": ["/rpc/*"], "service": rpc}],
            }
        ],
    )
    server.https_proxy(project, "checkout", checkout_map, region=region)
    broker = server.backend_service(project, "mqtt-broker", protocol="SSL")
    server.ssl_proxy(project, "mqtt", broker)


@contextmanager
def gcp_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """The local Compute server with one demo project; the policy points at it by `gcp.endpoint`."""
    server = ComputeServer()
    try:
        seed_estate(server)
        yield {"gcp": {"projects": [DEMO_PROJECT], "endpoint": server.url}}
    finally:
        server.stop()
