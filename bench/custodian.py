"""Cloud Custodian on the same scenario, in its own venv (c7n pins boto3), dry-run.

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

from bench.rss import run_measured

if TYPE_CHECKING:
    from bench.aws import Run
    from bench.proxy import Proxy

VENV = Path(__file__).parent / ".venv-custodian"
REQUIREMENT = "c7n==0.9.53"
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
    """bench/.venv-custodian with c7n installed, created on first use."""
    binary = VENV / "bin" / "custodian"
    if not binary.exists():
        log(f"creating {VENV} with {REQUIREMENT}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", REQUIREMENT], check=True)
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
