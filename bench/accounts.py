"""The fleet scenario: many AWS accounts behind the proxy, read through a role in each; remediate
(`--parallel N`) and c7n-org (N workers) in turn, against the lower bound with N units in flight.

Every account has the same shape (`--accounts`, `--fleet-lbs` load balancers in each of the two
regions), the role `OrganizationAccountAccessRole` trusting the management account (moto's
default, where the sandbox credentials sign), and one c7n-org accounts file lists them all: both
tools read the same file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench import custodian
from bench.aws import Run
from bench.fleet import MEMBER_ROLE, REGIONS, account_ids, seed_accounts, unit_key
from bench.lower_bound import fleet_lower_bound, listing_pages
from bench.proxy import Limits, Proxy
from bench.rss import Measured, own_cpu, run_measured
from remediate.providers.aws.discover import WORKERS_PER_REGION
from remediate.sandbox.aws import MotoServer, environment
from remediate.sandbox.org import as_account

POLICY = """\
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [{regions}]
  ssl_policy: auto
  accounts_file: {accounts_file}
"""


def accounts_file(ids: Sequence[str], path: Path) -> None:
    """The accounts in c7n-org's accounts file format, each with its role ARN and both regions."""
    document = {
        "accounts": [
            {
                "account_id": account,
                "name": f"member-{position:03d}",
                "role": f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",
                "regions": list(REGIONS),
            }
            for position, account in enumerate(ids, start=1)
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def warm_up(session: Any) -> None:
    """One call to each service the tools read, straight to moto: moto imports a service's
    modules and templates on its first request (a second or more of the bench process's CPU),
    which no measured run should pay for, or the first tool would pay for the others."""
    for region in REGIONS:
        session.client("elb", region_name=region).describe_load_balancers()
        session.client("apigatewayv2", region_name=region).get_domain_names()
        apigateway = session.client("apigateway", region_name=region)
        apigateway.get_domain_names()
        apigateway.get_rest_apis()
    session.client("sts", region_name=REGIONS[0]).get_caller_identity()


def scenario(
    accounts: int,
    per_region: int,
    parallel: int,
    limits: Limits,
    with_c7n_org: bool,
    log: Any,
) -> dict[str, Any]:
    server = MotoServer()
    ids = account_ids(accounts)
    try:
        # moto loads thousands of AMIs into each account's EC2 backend, made for the default VPC
        # of each region here: a second an account, for nothing a load balancer needs.
        with environment({**server.env(), "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}):
            started = time.perf_counter()
            shape = seed_accounts(ids, per_region)
            log(
                f"seeded {len(ids)} accounts, {shape.total} load balancers in "
                f"{time.perf_counter() - started:.1f} s"
            )
            # Every account has the same shape: one account's listings are paged per region.
            sample = as_account(ids[0])
            region_pages = {region: listing_pages(region, sample) for region in REGIONS}
            warm_up(sample)
        pages = {unit_key(a, r): region_pages[r] for a in ids for r in REGIONS}
        with Proxy(server.url, limits) as proxy, tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            env = {**os.environ, **server.env(), "AWS_ENDPOINT_URL": proxy.url}
            for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE"):
                env.pop(name, None)
            listed = tmp / "accounts.yml"
            accounts_file(ids, listed)
            plan, changes, read = _remediate(proxy, env, tmp, listed, parallel, log)
            floor = _floor(proxy, env, listed, parallel, limits, plan, log)
            org_run = (
                custodian.run_org(proxy, env, tmp, listed, parallel, log) if with_c7n_org else None
            )
    finally:
        server.stop()
    bound = fleet_lower_bound(shape, pages, len(ids), limits, WORKERS_PER_REGION, parallel)
    return {
        "fleet.accounts": len(ids),
        "fleet.units": len(ids) * len(REGIONS),
        "fleet.load_balancers": shape.total,
        "fleet.parallel": parallel,
        "fleet.remediate_plan_s": round(plan.seconds, 2),
        "fleet.c7n_org_s": round(org_run.seconds, 2) if org_run else None,
        "fleet.lower_bound_s": round(bound.seconds, 2),
        "fleet.floor_s": round(floor.seconds, 2),
        "fleet.floor_cpu_s": floor.cpu_s,
        "fleet.floor_emulator_cpu_s": floor.emulator_cpu_s,
        "fleet.floor_api_window_s": round(floor.api_window_s, 2),
        "fleet.api_calls": plan.total,
        "fleet.min_api_calls": bound.calls,
        "fleet.remediate_api_window_s": round(plan.api_window_s, 2),
        "fleet.throttled_calls": plan.throttled,
        "fleet.remediate_peak_rss_mb": plan.peak_rss_mb,
        "fleet.remediate_cpu_s": plan.cpu_s,
        "fleet.remediate_emulator_cpu_s": plan.emulator_cpu_s,
        "fleet.changes": changes,
        "fleet.accounts_changed": read,
        "fleet.c7n_org_api_calls": org_run.total if org_run else None,
        "fleet.c7n_org_throttled_calls": org_run.throttled if org_run else None,
        "fleet.c7n_org_peak_rss_mb": org_run.peak_rss_mb if org_run else None,
        "fleet.c7n_org_cpu_s": org_run.cpu_s if org_run else None,
        "fleet.c7n_org_emulator_cpu_s": org_run.emulator_cpu_s if org_run else None,
        "fleet.calls_by_action": dict(plan.calls),
        "fleet.c7n_org_calls_by_action": dict(org_run.calls) if org_run else None,
    }


def _through_proxy(
    proxy: Proxy, command: list[str], env: dict[str, str], what: str
) -> tuple[Run, Measured]:
    """`command` run as a fresh process against the fleet, the proxy's counters reset first: its
    wall and CPU time, peak memory, the calls it made by action, and the bench's own CPU meanwhile
    (moto and the proxy serving it)."""
    proxy.reset()
    before = own_cpu()
    result = run_measured(command, env)
    emulator_cpu = own_cpu() - before
    if result.code != 0:
        raise RuntimeError(f"{what} failed ({result.code}): {result.stderr[-2000:]}")
    run = Run(result.seconds, peak_rss_mb=result.peak_rss_mb, cpu_s=result.cpu_seconds)
    run.emulator_cpu_s = round(emulator_cpu, 2)
    run.calls, run.throttled = proxy.counts_by_action()
    run.api_window_s = proxy.api_window()
    return run, result


def _remediate(
    proxy: Proxy, env: dict[str, str], tmp: Path, listed: Path, parallel: int, log: Any
) -> tuple[Run, int, int]:
    """The plan's run, its number of changes and the number of accounts they touch."""
    policy = tmp / "remediate-fleet.yaml"
    policy.write_text(
        POLICY.format(regions=", ".join(REGIONS), accounts_file=json.dumps(str(listed))),
        encoding="utf-8",
    )
    env = {**env, "REMEDIATE_STATE_DIR": str(tmp / "state")}
    command = [sys.executable, "-m", "remediate", "plan", "-p", str(policy), "--format", "json"]
    command += ["--quiet", "--parallel", str(parallel)]
    run, result = _through_proxy(proxy, command, env, "remediate plan")
    document = json.loads(result.stdout)
    if document.get("failed_units"):
        raise RuntimeError(f"remediate plan left units unread: {document['failed_units'][:3]}")
    changes = document["changes"]
    touched = {change["resource"].split(":")[4] for change in changes}
    log(
        f"remediate plan --parallel {parallel}: {run.seconds:.1f} s "
        f"({run.api_window_s:.1f} s first to last call), {run.total} calls "
        f"({run.throttled} throttled), {len(changes)} changes in {len(touched)} accounts, "
        f"{result.peak_rss_mb:.0f} MB peak; CPU {run.cpu_s:.1f} s, moto and proxy "
        f"{run.emulator_cpu_s:.1f} s"
    )
    return run, len(changes), len(touched)


def _floor(
    proxy: Proxy,
    env: dict[str, str],
    listed: Path,
    parallel: int,
    limits: Limits,
    plan: Run,
    log: Any,
) -> Run:
    """The floor client's run (`bench.floor`, a fresh process) over the same accounts file;
    it must make exactly the calls remediate made, none throttled."""
    command = [sys.executable, "-m", "bench.floor", str(listed), "--parallel", str(parallel)]
    command += ["--workers", str(WORKERS_PER_REGION)]
    command += ["--burst", str(limits.burst), "--rate", str(limits.rate)]
    run, _ = _through_proxy(proxy, command, env, "the floor client")
    log(
        f"floor client: {run.seconds:.1f} s ({run.api_window_s:.1f} s first to last call), "
        f"{run.total} calls ({run.throttled} throttled); CPU {run.cpu_s:.1f} s, moto and proxy "
        f"{run.emulator_cpu_s:.1f} s"
    )
    if run.throttled or run.calls != plan.calls:
        raise RuntimeError(
            f"the floor client's calls differ from remediate's: {dict(run.calls)} "
            f"({run.throttled} throttled) against {dict(plan.calls)}"
        )
    return run
