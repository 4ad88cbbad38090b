"""`remediate demo`: the whole job on embedded worlds, no cloud account needed.

Each world is a context manager that starts its emulator, seeds it, and yields the policy
fragment that points remediate at it; the demo merges the fragments into one policy file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from remediate import engine, render, undo, verification
from remediate import policy as policy_module
from remediate.journal import Journal
from remediate.progress import reporter

World = Callable[[Path], Any]


@contextmanager
def aws_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """A moto server with a mixed ELBv2 fleet in two regions, Classic load balancers, REST,
    HTTP and WebSocket API custom domains and a REST API in the management account of an
    organization whose members have weak load balancers of their own, one member refusing the
    role (see `sandbox.org`): the demo reads every account and reports that one without
    stopping."""
    from remediate.sandbox.aws import (
        MotoServer,
        environment,
        seed_api_domains,
        seed_classic_fleet,
        seed_fleet,
        seed_rest_apis,
    )
    from remediate.sandbox.org import MEMBER_ROLE, seed_organization

    server = MotoServer()
    try:
        with environment(server.env()):
            # moto's backends are process-wide: start from an empty world even in a process
            # (a test run) that used moto before.
            server.reset()
            seed_rest_apis(seed_api_domains(seed_classic_fleet(seed_fleet())))
            seed_organization()
            yield {
                "aws": {
                    "regions": ["us-east-1", "eu-west-1"],
                    "ssl_policy": "auto",
                    "organization": {"role": MEMBER_ROLE},
                },
                "exclude": [
                    {
                        "match": "arn:aws:elasticloadbalancing:*:*:listener/app/legacy-pos/*",
                        "reason": "POS terminals speak TLS 1.0 until the March upgrade",
                        "until": "2027-03-31",
                    }
                ],
            }
    finally:
        server.stop()


@contextmanager
def nginx_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """An Nginx host under a private prefix, served by the local nginx binary when installed."""
    from remediate.sandbox.nginx import nginx_world as world

    with world(workdir) as fragment:
        yield fragment


@contextmanager
def gcp_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """The local Compute API server with a project of weak global and regional proxies, and a
    GCP organization of nested folders whose projects have weak proxies (one project without
    the Compute API, reported as a unit not read)."""
    from remediate.sandbox.gcp import gcp_world as world

    with world(workdir) as fragment:
        yield fragment


@contextmanager
def haproxy_world(workdir: Path) -> Iterator[dict[str, Any]]:
    """An HAProxy host on loopback, served by the local haproxy binary when installed."""
    from remediate.sandbox.haproxy import haproxy_world as world

    with world(workdir) as fragment:
        yield fragment


WORLDS: list[World] = [aws_world, gcp_world, nginx_world, haproxy_world]


def _merge(fragments: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {"version": 1, "tls": {"minimum": "1.2"}, "http2": True}
    exclusions: list[Any] = []
    for fragment in fragments:
        exclusions.extend(fragment.get("exclude", []))
        document.update({k: v for k, v in fragment.items() if k != "exclude"})
    if exclusions:
        document["exclude"] = exclusions
    return document


def run(
    *,
    quiet: bool,
    state_dir: Path | None,
    write: Callable[[str], None],
    note: Callable[[str], None],
    rollback: bool = False,
) -> None:
    """Plan, apply, plan again (clean); with `rollback`, then roll the apply back and plan once
    more, which finds the weak estate of step 1 again."""
    with tempfile.TemporaryDirectory(prefix="remediate-demo-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        fragments = [stack.enter_context(world(workdir)) for world in WORLDS]
        policy_path = workdir / "remediate.yaml"
        with policy_path.open("w", encoding="utf-8") as handle:
            YAML().dump(_merge(fragments), handle)
        policy = policy_module.load(policy_path)
        journal = Journal(state_dir or workdir / "state")
        write(f"== The policy ({policy_path})\n\n{policy_path.read_text(encoding='utf-8')}\n")

        write("== 1. remediate plan\n\n")
        with reporter(quiet) as progress:
            first = engine.plan(policy, progress=progress, journal=journal)
        write(render.plan_text(first) + "\n")

        write("== 2. remediate apply --auto-approve\n\n")
        with reporter(quiet) as progress:
            result = engine.apply(first, policy, journal=journal, progress=progress)
        write(render.outcomes_text(result.outcomes, result.run_id))
        write(verification.results_text(result.checks or []) + "\n")

        write("== 3. remediate plan, again\n\n")
        with reporter(quiet) as progress:
            second = engine.plan(policy, progress=progress, journal=journal)
        write(render.plan_text(second))
        if second.has_changes or result.failed or result.probes_failed:
            note("demo: the second plan is not clean; see above")
        if second.failed_units:
            note(
                f"demo: {len(second.failed_units)} units not read, as intended: the sandbox AWS "
                "organization's `legacy` account does not trust this one, and the sandbox GCP "
                "organization's `batch-jobs` project has no Compute API (a CLI run exits 1)"
            )
        if not rollback:
            return

        write(f"\n== 4. remediate rollback {result.run_id} --auto-approve\n\n")
        with reporter(quiet) as progress:
            undone = undo.rollback(result.run_id, policy, journal=journal, progress=progress)
        write(render.outcomes_text(undone.outcomes, undone.run_id) + "\n")

        write("== 5. remediate plan, after the rollback\n\n")
        with reporter(quiet) as progress:
            third = engine.plan(policy, progress=progress, journal=journal)
        write(render.plan_text(third))
        if undone.failed or len(third.changes) != len(first.changes):
            note("demo: the rollback did not restore the estate of step 1; see above")
