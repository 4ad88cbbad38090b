"""`python -m bench`: run the scenarios, write bench/results.json and print a table."""

from __future__ import annotations

import argparse
import compileall
import json
import sys
import time
from pathlib import Path
from typing import Any

import remediate
from bench import accounts, aws, nginx
from bench.proxy import Limits

RESULTS = Path(__file__).parent / "results.json"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--load-balancers", type=int, default=1000, metavar="N")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--rate", type=float, default=20.0, help="refill, calls a second")
    parser.add_argument("--server-blocks", type=int, default=2000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--fleet-hosts", type=int, default=30, help="Nginx hosts of the fleet")
    parser.add_argument("--fleet-blocks", type=int, default=50, help="server blocks per host")
    parser.add_argument("--forks", type=int, default=20, help="Ansible forks (nginx.forks)")
    parser.add_argument(
        "--repeat",
        type=positive,
        default=3,
        help="Nginx: floor and plan measured this many times each, alternately (medians)",
    )
    parser.add_argument("--accounts", type=positive, default=100, help="AWS accounts of the fleet")
    parser.add_argument(
        "--fleet-lbs", type=positive, default=5, help="load balancers per account and region"
    )
    parser.add_argument(
        "--parallel",
        type=positive,
        default=16,
        help="units (account x region) in flight: remediate --parallel, c7n-org's workers",
    )
    parser.add_argument(
        "--no-custodian", action="store_true", help="skip Cloud Custodian and c7n-org"
    )
    parser.add_argument("--only", choices=["aws", "fleet", "nginx"], help="run one scenario")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # remediate runs as installed: pip compiles a wheel's modules when it installs them, while a
    # source checkout (or PYTHONDONTWRITEBYTECODE) would compile them again in every process.
    compileall.compile_dir(Path(remediate.__file__).parent, quiet=1)

    results: dict[str, Any] = {}
    limits = Limits(latency=args.latency_ms / 1000, burst=args.burst, rate=args.rate)
    if args.only in (None, "aws"):
        results.update(aws.scenario(args.load_balancers, limits, not args.no_custodian, log))
    if args.only in (None, "fleet"):
        results.update(
            accounts.scenario(
                args.accounts, args.fleet_lbs, args.parallel, limits, not args.no_custodian, log
            )
        )
    if args.only in (None, "nginx"):
        results.update(
            nginx.scenario(
                args.server_blocks,
                args.files,
                log,
                fleet_hosts=args.fleet_hosts,
                fleet_blocks=args.fleet_blocks,
                forks=args.forks,
                repeat=args.repeat,
            )
        )
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    log(f"wrote {args.output}")
    return 0


def _ratio(numerator: Any, denominator: Any) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}x"


def fleet_bound(results: dict[str, Any]) -> float | None:
    """What the fleet plan is held to: the larger of the formula's bound (what the latency and
    the buckets allow, with a server that has no CPU limit) and the floor client measured in the
    same run (what this emulator on this machine allows)."""
    known = [
        value
        for value in (results.get("fleet.lower_bound_s"), results.get("fleet.floor_s"))
        if value
    ]
    return max(known) if known else None


def table(results: dict[str, Any]) -> str:
    """The measured numbers, then each goal of the benchmark issue as a ratio and a verdict."""
    rows = [(key, value) for key, value in results.items() if not isinstance(value, dict)]
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {'-' if value is None else value}" for key, value in rows]
    goals = [
        (
            "plan / lower bound",
            results.get("aws.remediate_plan_s"),
            results.get("aws.lower_bound_s"),
            1.2,
            False,
        ),
        (
            "custodian / plan",
            results.get("aws.custodian_s"),
            results.get("aws.remediate_plan_s"),
            1.5,
            True,
        ),
        (
            "api calls / minimum",
            results.get("aws.api_calls"),
            results.get("aws.min_api_calls"),
            1.05,
            False,
        ),
        (
            "fleet plan / bound",
            results.get("fleet.remediate_plan_s"),
            fleet_bound(results),
            1.3,
            False,
        ),
        (
            "fleet c7n-org / plan",
            results.get("fleet.c7n_org_s"),
            results.get("fleet.remediate_plan_s"),
            3.0,
            True,
        ),
        (
            "nginx plan / ansible",
            results.get("nginx.plan_s"),
            results.get("nginx.ansible_floor_s"),
            1.3,
            False,
        ),
        (
            "30 hosts plan / ansible",
            results.get("nginx.fleet_plan_s"),
            results.get("nginx.fleet_ansible_floor_s"),
            1.3,
            False,
        ),
    ]
    lines += ["", f"{'goal':<24} {'measured':>9} {'target':>9}  met"]
    for name, numerator, denominator, target, at_least in goals:
        ratio = _ratio(numerator, denominator)
        met = "-"
        if ratio != "-":
            value = numerator / denominator
            met = "yes" if (value >= target if at_least else value <= target) else "NO"
        bound = f"{'>=' if at_least else '<='}{target}x"
        lines.append(f"{name:<24} {ratio:>9} {bound:>9}  {met}")
    for name, key, limit in (
        ("nginx peak RSS (MB)", "nginx.peak_rss_mb", 300),
        ("fleet peak RSS (MB)", "fleet.remediate_peak_rss_mb", 500),
    ):
        rss = results.get(key)
        lines.append(
            f"{name:<24} {rss if rss is not None else '-':>9} {'<' + str(limit):>9}  "
            + ("-" if rss is None else ("yes" if rss < limit else "NO"))
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
