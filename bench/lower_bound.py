"""The least work the AWS plan needs, and the least time that work takes behind the proxy.

Calls, per region (r):

    C_r = P_ssl + ceil(LB_r / 400) + ceil(TG_r / 400) + LB_r + ALB_https_r

one page of `DescribeSSLPolicies` (P_ssl, what moto returns in one call), the load balancers and
target groups at the API's page maximum of 400, one `DescribeListeners` per load balancer (the API
lists the listeners of one load balancer per call) and one `DescribeLoadBalancerAttributes` per ALB
with an HTTPS listener (HTTP/2 is an ALB attribute that only matters over HTTPS).

Time, per region, with the proxy's latency L, burst B and refill R, and W calls in flight:

    T_r = L + max((C_r - B) / R,  (ceil(C_r / W) - 1) * L,  (D - 1) * L)

The bucket admits call n no earlier than (n - B) / R; W in flight cannot start more than W calls
every L; D = 3 calls depend on each other (list, listeners, attributes). Regions have their own
buckets and run in parallel, so the bound is the largest T_r. It leaves out the client's start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.fleet import Shape
from bench.proxy import Limits

PAGE = 400
DEPTH = 3


@dataclass(frozen=True)
class Bound:
    calls: int
    seconds: float


def lower_bound(shape: Shape, limits: Limits, workers: int, ssl_policy_pages: int = 1) -> Bound:
    calls = 0
    seconds = 0.0
    for region, balancers in shape.load_balancers.items():
        region_calls = (
            ssl_policy_pages
            + math.ceil(balancers / PAGE)
            + math.ceil(shape.target_groups[region] / PAGE)
            + balancers
            + shape.albs_with_https[region]
        )
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
