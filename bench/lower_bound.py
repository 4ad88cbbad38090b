"""The least work the AWS plan needs, and the least time that work takes behind the proxy.

Calls, per region (r):

    C_r = P_ssl + P_lb + P_tg + LB_r + ALB_https_r

the pages of `DescribeSSLPolicies`, `DescribeLoadBalancers` and `DescribeTargetGroups` at the API's
page maximum of 400 (counted by paging the emulator itself: moto returns every target group in one
page, where AWS needs ceil(TG_r / 400)), one `DescribeListeners` per load balancer (the API lists
the listeners of one load balancer per call) and one `DescribeLoadBalancerAttributes` per ALB with
an HTTPS listener (HTTP/2 is an ALB attribute that only matters over HTTPS).

Time, per region, with the proxy's latency L, burst B and refill R, and W calls in flight:

    T_r = L + max((C_r - B) / R,  (ceil(C_r / W) - 1) * L,  (D - 1) * L)

The bucket admits call n no earlier than (n - B) / R; W in flight cannot start more than W calls
every L; D = 3 calls depend on each other (list, listeners, attributes). Regions have their own
buckets and run in parallel, so the bound is the largest T_r. It leaves out the client's start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from bench.fleet import Shape
from bench.proxy import Limits

PAGE = 400
LISTINGS = {
    "describe_ssl_policies": "SslPolicies",
    "describe_load_balancers": "LoadBalancers",
    "describe_target_groups": "TargetGroups",
}
DEPTH = 3


@dataclass(frozen=True)
class Bound:
    calls: int
    seconds: float


def listing_pages(region: str) -> int:
    """Pages the three listings take at PAGE a page, paged from the emulator (not the proxy)."""
    client: Any = boto3.client("elbv2", region_name=region)
    pages = 0
    for operation in LISTINGS:
        marker: str | None = None
        while True:
            extra = {"Marker": marker} if marker else {}
            page = getattr(client, operation)(PageSize=PAGE, **extra)
            pages += 1
            marker = page.get("NextMarker")
            if not marker:
                break
    return pages


def lower_bound(shape: Shape, pages: Mapping[str, int], limits: Limits, workers: int) -> Bound:
    """`pages`: listing pages per region, from `listing_pages`."""
    calls = 0
    seconds = 0.0
    for region, balancers in shape.load_balancers.items():
        region_calls = pages[region] + balancers + shape.albs_with_https[region]
        calls += region_calls
        seconds = max(
            seconds,
            limits.latency
            + max(
                max(0, region_calls - limits.burst) / limits.rate,
                (math.ceil(region_calls / workers) - 1) * limits.latency,
                (DEPTH - 1) * limits.latency,
            ),
        )
    return Bound(calls, seconds)
