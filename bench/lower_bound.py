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

A fleet of accounts (`fleet_lower_bound`) is read in units of (account, region), N at a time.
Each unit u has its own bucket (AWS throttles per account per region) and needs C_u calls and at
least T_u seconds, the single-region formula above with its own counts. Each of the A accounts
also needs one STS AssumeRole before its first unit, made with the management account's
credentials, so all A share that account's STS bucket:

    T = max( L + max(0, A - B) / R + min_u T_u,
             (sum_u T_u + A * L) / N,
             ceil(U / N) * min_u T_u,
             L + max_u T_u )

the last AssumeRole is admitted no earlier than (A - B) / R and its unit follows it; N units in
flight hold a slot for at least T_u each, and an account's first unit for L longer; U units cannot
finish in fewer than ceil(U / N) rounds of the shortest unit; no unit takes less than its own
AssumeRole and its own calls. The calls are sum_u C_u + A.
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


def listing_pages(region: str, session: Any = None) -> int:
    """Pages the three listings take at PAGE a page, paged from the emulator (not the proxy);
    `session` reads another account (boto3's default one otherwise)."""
    client: Any = (session or boto3).client("elbv2", region_name=region)
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
    units = _units(shape, pages, limits, workers)
    return Bound(sum(calls for calls, _ in units.values()), max(t for _, t in units.values()))


def fleet_lower_bound(
    shape: Shape,
    pages: Mapping[str, int],
    accounts: int,
    limits: Limits,
    workers: int,
    parallel: int,
) -> Bound:
    """`shape` and `pages` by unit (`ACCOUNT/REGION`); `accounts` AssumeRole calls share one
    bucket; `parallel` units in flight, `workers` calls in flight in each."""
    units = _units(shape, pages, limits, workers)
    times = [t for _, t in units.values()]
    latency = limits.latency
    seconds = max(
        latency + max(0, accounts - limits.burst) / limits.rate + min(times),
        (sum(times) + accounts * latency) / parallel,
        math.ceil(len(times) / parallel) * min(times),
        latency + max(times),
    )
    return Bound(sum(calls for calls, _ in units.values()) + accounts, seconds)


def _units(
    shape: Shape, pages: Mapping[str, int], limits: Limits, workers: int
) -> dict[str, tuple[int, float]]:
    """C and T of each key of `shape` (a region, or a unit of a fleet)."""
    found: dict[str, tuple[int, float]] = {}
    for key, balancers in shape.load_balancers.items():
        calls = pages[key] + balancers + shape.albs_with_https[key]
        found[key] = (
            calls,
            limits.latency
            + max(
                max(0, calls - limits.burst) / limits.rate,
                (math.ceil(calls / workers) - 1) * limits.latency,
                (DEPTH - 1) * limits.latency,
            ),
        )
    return found
