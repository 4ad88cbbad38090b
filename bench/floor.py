"""The fleet's floor: the least a client does to read the fleet remediate reads, with the same
parallelism, through the same proxy and emulator. `python -m bench.floor ACCOUNTS_FILE` runs in a
fresh process, as `remediate plan` does, so its start-up is counted alike.

Bare botocore, created as cheaply as it goes: one botocore session (one data loader, one parse of
each service model and of the endpoint data), the clients of a unit made from it with the unit's
credentials and nothing registered on them. One STS `AssumeRole` per account with the management
account's credentials (the environment's), paced by a token bucket of the proxy's size so that
none is throttled (the formula's (n - B) / R), made by the account's first unit while its other
unit waits. Then per (account, region) unit exactly the calls remediate makes: the three ELBv2
listings at 400 a page, one `DescribeListeners` per load balancer followed, for an ALB with an
HTTPS listener, by its `DescribeLoadBalancerAttributes`, and the four listings of the kinds beyond
ELBv2 (Classic `DescribeLoadBalancers`, API Gateway v2 `GetDomainNames`, API Gateway
`GetDomainNames` and `GetRestApis`). `--parallel` units in flight, each with up to `--workers`
calls in flight (on one shared pool of threads); nothing is done with the answers beyond finding
the next calls (the proxy counts them). The garbage collector runs with the settings the
`remediate` command gives itself (`remediate.cli._settle`).
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import botocore.session
import yaml
from botocore.config import Config

PAGE = 400
CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=16)
"""botocore's standard retries: a connection the proxy's listen queue dropped is tried again, as
remediate's retries do (the bench checks that the floor was never throttled)."""


class Pace:
    """A blocking token bucket: call n leaves no earlier than (n - burst) / rate. The same
    arithmetic as `remediate.providers.aws.discover.RateLimit`, kept here because the floor
    imports nothing of remediate: that import (boto3 and the models) is start-up it would not
    need (0.6 to 0.8 s measured on a busy machine)."""

    def __init__(self, burst: int, rate: float) -> None:
        self.rate = rate
        self.tokens = float(burst)
        self.burst = burst
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - 1
            self.stamp = now
            delay = -self.tokens / self.rate
        if delay > 0:
            time.sleep(delay)


class Floor:
    def __init__(self, parallel: int, workers: int, burst: int, rate: float) -> None:
        self.session = botocore.session.get_session()
        region = self.session.get_config_variable("region") or "us-east-1"
        self.sts = self.session.create_client("sts", region_name=region, config=CONFIG)
        self.pace = Pace(burst, rate)
        self.calls = ThreadPoolExecutor(max_workers=parallel * workers)
        self.parallel = parallel
        self.lock = threading.Lock()
        self.assumed: dict[str, Future[dict[str, str]]] = {}

    def credentials(self, account: str, role: str) -> dict[str, str]:
        """The account's assumed credentials: the first unit asks, the other waits for them."""
        with self.lock:
            future = self.assumed.get(account)
            mine = future is None
            if future is None:
                future = self.assumed[account] = Future()
        if mine:
            self.pace.wait()
            try:
                answer = self.sts.assume_role(RoleArn=role, RoleSessionName=f"floor-{account}")
            except Exception as exc:
                future.set_exception(exc)
                raise
            found = answer["Credentials"]
            future.set_result(
                {
                    "aws_access_key_id": found["AccessKeyId"],
                    "aws_secret_access_key": found["SecretAccessKey"],
                    "aws_session_token": found["SessionToken"],
                }
            )
        return future.result()

    def unit(self, account: str, role: str, region: str) -> None:
        keys = self.credentials(account, role)
        elbv2, elb, http_apis, rest_apis = (
            self.session.create_client(name, region_name=region, config=CONFIG, **keys)
            for name in ("elbv2", "elb", "apigatewayv2", "apigateway")
        )
        submit = self.calls.submit
        pending = [
            submit(self.pages, elbv2.describe_ssl_policies, "SslPolicies"),
            submit(self.pages, elbv2.describe_target_groups, "TargetGroups"),
            submit(self.pages, elb.describe_load_balancers, "LoadBalancerDescriptions"),
            submit(http_apis.get_domain_names),
            submit(rest_apis.get_domain_names),
            submit(rest_apis.get_rest_apis),
        ]
        for lb in self.pages(elbv2.describe_load_balancers, "LoadBalancers"):
            pending.append(submit(self.load_balancer, elbv2, lb))
        for future in pending:
            future.result()

    def pages(self, operation: Callable[..., Any], key: str) -> list[Any]:
        """Every item of a Marker-paged listing, PAGE a page (Classic ELB's own maximum is
        400 as well)."""
        items: list[Any] = []
        extra: dict[str, str] = {}
        while True:
            page = operation(PageSize=PAGE, **extra)
            items.extend(page[key])
            marker = page.get("NextMarker")
            if not marker:
                return items
            extra = {"Marker": marker}

    def load_balancer(self, client: Any, lb: dict[str, Any]) -> None:
        listeners = client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
        https = any(item.get("Protocol") == "HTTPS" for item in listeners["Listeners"])
        if lb["Type"] == "application" and https:
            client.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])

    def run(self, units: list[tuple[str, str, str]]) -> None:
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for future in [pool.submit(self.unit, *unit) for unit in units]:
                future.result()
        self.calls.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("accounts_file", help="a c7n-org accounts file (role ARN, regions)")
    parser.add_argument("--parallel", type=int, default=16, help="units in flight")
    parser.add_argument("--workers", type=int, default=8, help="calls in flight per unit")
    parser.add_argument("--burst", type=int, default=40, help="STS bucket: burst")
    parser.add_argument("--rate", type=float, default=20.0, help="STS bucket: calls a second")
    args = parser.parse_args(argv)
    with open(args.accounts_file, encoding="utf-8") as handle:
        listed = yaml.safe_load(handle)["accounts"]
    units = [
        (str(item["account_id"]), item["role"], region)
        for item in listed
        for region in item["regions"]
    ]
    # What the `remediate` command does from its start (`remediate.cli._settle`): the floor must
    # not pay for a garbage collector setting that the plan avoids.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    floor = Floor(args.parallel, args.workers, args.burst, args.rate)
    floor.run(units)
    return 0


if __name__ == "__main__":
    sys.exit(main())
