"""The AWS scenario: one seeded moto server behind the proxy; remediate and Custodian in turn."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import custodian
from bench.fleet import REGIONS, Shape, seed
from bench.lower_bound import listing_pages, lower_bound
from bench.proxy import Limits, Proxy
from bench.rss import run_measured
from remediate.providers.aws.discover import WORKERS_PER_REGION
from remediate.sandbox.aws import MotoServer, environment

POLICY = f"""\
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [{", ".join(REGIONS)}]
  ssl_policy: auto
"""


@dataclass
class Run:
    """One tool's run behind the proxy."""

    seconds: float
    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    peak_rss_mb: float | None = None
    api_window_s: float = 0.0
    cpu_s: float = 0.0
    """The tool's user and system time (its processes included)."""
    emulator_cpu_s: float = 0.0
    """The bench process's own CPU time meanwhile: moto and the proxy serving the tool."""

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def scenario(load_balancers: int, limits: Limits, with_custodian: bool, log: Any) -> dict[str, Any]:
    server = MotoServer()
    try:
        with environment(server.env()):
            started = time.perf_counter()
            shape = seed(load_balancers)
            log(f"seeded {shape.total} load balancers in {time.perf_counter() - started:.1f} s")
            pages = {region: listing_pages(region) for region in REGIONS}
        with Proxy(server.url, limits) as proxy, tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, **server.env(), "AWS_ENDPOINT_URL": proxy.url}
            for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE"):
                env.pop(name, None)
            plan = _remediate(proxy, env, Path(tmp), shape, log)
            custodian_run = (
                custodian.run(proxy, env, Path(tmp), REGIONS, log) if with_custodian else None
            )
    finally:
        server.stop()
    bound = lower_bound(shape, pages, limits, WORKERS_PER_REGION)
    return {
        "aws.load_balancers": shape.total,
        "aws.remediate_plan_s": round(plan.seconds, 2),
        "aws.custodian_s": round(custodian_run.seconds, 2) if custodian_run else None,
        "aws.lower_bound_s": round(bound.seconds, 2),
        "aws.api_calls": plan.total,
        "aws.min_api_calls": bound.calls,
        "aws.remediate_api_window_s": round(plan.api_window_s, 2),
        "aws.throttled_calls": plan.throttled,
        "aws.remediate_peak_rss_mb": plan.peak_rss_mb,
        "aws.custodian_api_calls": custodian_run.total if custodian_run else None,
        "aws.custodian_throttled_calls": custodian_run.throttled if custodian_run else None,
        "aws.calls_by_action": dict(plan.calls),
        "aws.custodian_calls_by_action": dict(custodian_run.calls) if custodian_run else None,
    }


def _remediate(proxy: Proxy, env: dict[str, str], tmp: Path, shape: Shape, log: Any) -> Run:
    policy = tmp / "remediate.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {**env, "REMEDIATE_STATE_DIR": str(tmp / "state")}
    command = [sys.executable, "-m", "remediate", "plan", "-p", str(policy)]
    command += ["--format", "json", "--quiet"]
    proxy.reset()
    result = run_measured(command, env)
    if result.code != 0:
        raise RuntimeError(f"remediate plan failed ({result.code}): {result.stderr[-2000:]}")
    changes = json.loads(result.stdout)["changes"]
    if not changes:
        raise RuntimeError("remediate plan found nothing to change: the fleet was not seen")
    run = Run(result.seconds, peak_rss_mb=result.peak_rss_mb)
    run.calls, run.throttled = proxy.counts_by_action()
    run.api_window_s = proxy.api_window()
    log(
        f"remediate plan: {run.seconds:.1f} s ({run.api_window_s:.1f} s first to last call), "
        f"{run.total} calls ({run.throttled} throttled), "
        f"{len(changes)} changes, {result.peak_rss_mb:.0f} MB peak"
    )
    return run
