"""Cloud Custodian on the same scenario, in its own venv (c7n pins boto3), dry-run; and c7n-org
(Custodian's runner for many accounts, pinned to the same c7n) on the fleet scenario.

The policies do what `remediate plan` does, written the way that costs Custodian the fewest calls:
cheap value filters first, then one `listener` filter (a JMESPath key, so one DescribeListeners pass
per load balancer), and the attribute filter before the listener filter where it narrows more.
Custodian needs the weak policy names spelled out; remediate reads them from the API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.rss import own_cpu, run_measured

if TYPE_CHECKING:
    from bench.aws import Run
    from bench.proxy import Proxy

VENV = Path(__file__).parent / ".venv-custodian"
REQUIREMENTS = ("c7n==0.9.53", "c7n-org==0.6.52")  # c7n-org 0.6.52 pins c7n 0.9.53
ORG_PARALLEL_ENV = "C7N_ORG_PARALLEL"
"""c7n-org's worker processes (its `run` has no option for them; 4 per CPU by default)."""
WEAK = [
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-2015-05",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08",
]
TARGET = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _weak_listener(protocol: str) -> dict[str, object]:
    names = ", ".join(f"'{name}'" for name in WEAK)
    return {
        "type": "listener",
        "key": f"Protocol == '{protocol}' && contains([{names}], SslPolicy)",
        "value": True,
    }


POLICIES = {
    "policies": [
        {
            "name": "alb-weak-tls",
            "resource": "aws.app-elb",
            "filters": [{"Type": "application"}, _weak_listener("HTTPS")],
            "actions": [{"type": "modify-listener", "sslpolicy": TARGET}],
        },
        {
            "name": "nlb-weak-tls",
            "resource": "aws.app-elb",
            "filters": [{"Type": "network"}, _weak_listener("TLS")],
            "actions": [{"type": "modify-listener", "sslpolicy": TARGET}],
        },
        {
            "name": "alb-http2-off",
            "resource": "aws.app-elb",
            "filters": [
                {"Type": "application"},
                {"type": "attributes", "key": "routing.http2.enabled", "value": False},
                {"type": "listener", "key": "Protocol", "value": "HTTPS"},
            ],
            "actions": [
                {"type": "modify-attributes", "attributes": {"routing.http2.enabled": "true"}}
            ],
        },
        {
            "name": "backend-http2",
            "resource": "aws.app-elb-target-group",
            "filters": [
                {"type": "value", "key": "ProtocolVersion", "op": "in", "value": ["HTTP2", "GRPC"]}
            ],
        },
    ]
}


def ensure_venv(log: Callable[[str], None]) -> Path:
    """bench/.venv-custodian with c7n and c7n-org installed, created on first use (c7n-org is
    added to a venv made before it was needed)."""
    binary = VENV / "bin" / "custodian"
    if not binary.exists() or not (VENV / "bin" / "c7n-org").exists():
        log(f"installing {', '.join(REQUIREMENTS)} into {VENV}")
        if not (VENV / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "--quiet", *REQUIREMENTS]
        subprocess.run(pip, check=True)
    return binary


def run(
    proxy: Proxy, env: dict[str, str], tmp: Path, regions: Sequence[str], log: Callable[[str], None]
) -> Run:
    from bench.aws import Run

    binary = ensure_venv(log)
    policy = tmp / "custodian.yml"
    policy.write_text(json.dumps(POLICIES), encoding="utf-8")
    output = tmp / "custodian-out"
    command = [str(binary), "run", "--dryrun", "-s", str(output), "--cache", str(tmp / "c7n.cache")]
    for region in regions:
        command += ["--region", region]
    command.append(str(policy))
    proxy.reset()
    result = run_measured(command, {**env, "HOME": str(tmp)})
    if result.code != 0:
        raise RuntimeError(f"custodian failed ({result.code}): {result.stderr[-2000:]}")
    matched = sum(len(json.loads(path.read_text())) for path in output.rglob("resources.json"))
    if not matched:
        raise RuntimeError(f"custodian matched nothing: {result.stderr[-2000:]}")
    calls, throttled = proxy.counts_by_action()
    log(
        f"custodian: {result.seconds:.1f} s, {sum(calls.values())} calls ({throttled} throttled), "
        f"{matched} resources matched"
    )
    return Run(result.seconds, calls, throttled, result.peak_rss_mb, proxy.api_window())


def run_org(
    proxy: Proxy,
    env: dict[str, str],
    tmp: Path,
    accounts: Path,
    parallel: int,
    log: Callable[[str], None],
) -> Run:
    """`c7n-org run --dryrun` of POLICIES over every account and region of `accounts` (a c7n-org
    accounts file), `parallel` worker processes."""
    from bench.aws import Run

    binary = ensure_venv(log).parent / "c7n-org"
    policy = tmp / "c7n-org-policies.yml"
    policy.write_text(json.dumps(POLICIES), encoding="utf-8")
    output = tmp / "c7n-org-out"
    cache = tmp / "c7n-org-cache"
    cache.mkdir()
    command = [str(binary), "run", "-c", str(accounts), "-s", str(output), "-u", str(policy)]
    command += ["--cache-path", str(cache), "--dryrun"]
    proxy.reset()
    before = own_cpu()
    result = run_measured(command, {**env, "HOME": str(tmp), ORG_PARALLEL_ENV: str(parallel)})
    emulator_cpu = own_cpu() - before
    if result.code != 0:
        raise RuntimeError(f"c7n-org failed ({result.code}): {result.stderr[-2000:]}")
    found = list(output.rglob("resources.json"))
    matched = sum(len(json.loads(path.read_text())) for path in found)
    # OUT/ACCOUNT_NAME/REGION/POLICY/resources.json
    accounts_seen = {path.relative_to(output).parts[0] for path in found}
    if not matched:
        raise RuntimeError(f"c7n-org matched nothing: {result.stderr[-2000:]}")
    calls, throttled = proxy.counts_by_action()
    log(
        f"c7n-org ({parallel} workers): {result.seconds:.1f} s, {sum(calls.values())} calls "
        f"({throttled} throttled), {matched} resources matched in {len(accounts_seen)} accounts, "
        f"{result.peak_rss_mb:.0f} MB peak; CPU {result.cpu_seconds:.1f} s, moto and proxy "
        f"{emulator_cpu:.1f} s"
    )
    return Run(
        result.seconds,
        calls,
        throttled,
        result.peak_rss_mb,
        proxy.api_window(),
        result.cpu_seconds,
        round(emulator_cpu, 2),
    )
