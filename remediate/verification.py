"""After an apply: probe each changed endpoint that can be reached and check the policy holds there.

What is probed, per applied change (several changes to one endpoint give one verification):

Each provider says what to expect where (`Provider.expectations`), for example every TLS socket of
an Nginx host's changed file, or an AWS listener's DNS name and port (only when the name resolves:
an emulator's names do not, "not reachable, skipped"). Checked: each TLS version below the policy
minimum is refused, the minimum is accepted, h2 is selected when HTTP/2 is expected, the
WebSocket handshake works on each WebSocket path and, where the provider asks for it
(`Expectation.ws_idle`), a WebSocket there stays open across an idle period. Those idle probes
run last, all at once, so a verification waits one idle period, not one per path.

A probe that cannot tell makes its check inconclusive: neither passed nor failed. Only a failed
check fails the verification.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from remediate import registry
from remediate.executors import Outcome, Status
from remediate.model import Change
from remediate.policy import Policy, tls_key
from remediate.progress import Progress, Silent
from remediate.verify import (
    TLS_VERSIONS,
    Target,
    alpn_selected,
    connect,
    tls_accepted,
    websocket_ok,
    websocket_stays_open,
)

SETTLE_SECONDS = 5.0

VERIFIED = "verified"
FAILED = "failed"
INCONCLUSIVE = "inconclusive"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One expectation at one endpoint: `ok` True passed, False failed, None inconclusive."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class Verification:
    """The checks at one endpoint a change touched."""

    resource: str
    endpoint: str
    checks: list[Check] = field(default_factory=list)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    """What was deliberately not checked, and why."""

    @property
    def status(self) -> str:
        if self.skipped:
            return SKIPPED
        if any(check.ok is False for check in self.checks):
            return FAILED
        if any(check.ok is None for check in self.checks):
            return INCONCLUSIVE
        return VERIFIED

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "endpoint": self.endpoint,
            "status": self.status,
            "skipped": self.skipped or None,
            "notes": self.notes,
            "checks": [
                {"check": check.name, "ok": check.ok, "detail": check.detail}
                for check in self.checks
            ],
        }


@dataclass(frozen=True)
class Expectation:
    """What must hold at one endpoint after the apply."""

    resource: str
    target: Target
    check_tls: bool
    http2: bool
    ws_paths: tuple[str, ...] = ()
    ws_idle: float = 0.0
    """Seconds a WebSocket on each of `ws_paths` must stay open while idle (0: not checked)."""
    notes: tuple[str, ...] = ()
    """What the provider chose not to check here, and why (shown with the results)."""


def expectations(changes: Iterable[Change], policy: Policy) -> Iterator[Expectation]:
    """One expectation per endpoint the changes touch, in order, without repeats."""
    seen: set[tuple[str, str, int]] = set()
    for expectation in _expectations(list(changes), policy):
        key = (expectation.resource, expectation.target.host, expectation.target.port)
        if key not in seen:
            seen.add(key)
            yield expectation


def _expectations(items: list[Change], policy: Policy) -> Iterator[Expectation]:
    """What each provider expects at the endpoints its changes touch, repeats included."""
    by_provider: dict[str, list[Change]] = {}
    for change in items:
        by_provider.setdefault(change.provider, []).append(change)
    for name, changes in by_provider.items():
        yield from registry.get(name).expectations(changes, policy)


def _reachable(target: Target) -> str:
    """Why the target cannot be probed, or "" when a TCP connection succeeds."""
    try:
        connect(target).close()
    except socket.gaierror:
        return f"not reachable, skipped: {target.host} does not resolve"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"not reachable, skipped: {target.host}:{target.port}: {reason}"
    return ""


def check(expectation: Expectation, minimum: str, settle: float = SETTLE_SECONDS) -> Verification:
    """Probe one endpoint against what the policy demands of it.

    A reload takes effect asynchronously (old workers finish their connections), so a failing
    probe is repeated for up to `settle` seconds before it counts.
    """
    deadline = time.monotonic() + settle
    while True:
        result = _check_once(expectation, minimum)
        if result.status != FAILED or time.monotonic() >= deadline:
            return result
        time.sleep(0.5)


def _check_once(expectation: Expectation, minimum: str) -> Verification:
    target = expectation.target
    name = f" ({target.server_name})" if target.server_name else ""
    result = Verification(
        expectation.resource, f"{target.host}:{target.port}{name}", notes=list(expectation.notes)
    )
    result.skipped = _reachable(target)
    if result.skipped:
        return result
    if expectation.check_tls:
        for version in TLS_VERSIONS:
            if tls_key(version) > tls_key(minimum):
                continue
            accepted = tls_accepted(target, version)
            if version == minimum:
                result.checks.append(_accepts(version, accepted))
            else:
                result.checks.append(_refuses(version, accepted))
    if expectation.http2:
        selected = alpn_selected(target)
        result.checks.append(
            Check("h2 selected", selected == "h2", f"ALPN selected {selected or 'nothing'}")
        )
    for path in expectation.ws_paths:
        ok, status = websocket_ok(target, path)
        seen = f"HTTP {status}" if status is not None else "no HTTP response"
        result.checks.append(Check(f"WebSocket {path}", ok, seen))
    return result


_HANDSHAKE = {True: "accepted", False: "refused", None: "inconclusive handshake"}


def _accepts(version: str, accepted: bool | None) -> Check:
    return Check(f"TLS {version} accepted", accepted, _HANDSHAKE[accepted])


def _refuses(version: str, accepted: bool | None) -> Check:
    ok = None if accepted is None else not accepted
    return Check(f"TLS {version} refused", ok, _HANDSHAKE[accepted])


def verify_outcomes(
    outcomes: Iterable[Outcome],
    policy: Policy,
    progress: Progress | None = None,
    settle: float = SETTLE_SECONDS,
) -> list[Verification]:
    """Verify every endpoint that an applied change touched."""
    progress = progress or Silent()
    started = time.monotonic()
    applied = [o.change for o in outcomes if o.status is Status.APPLIED]
    results: list[Verification] = []
    idle: list[tuple[Verification, Expectation, str]] = []
    keys: dict[int, str] = {}
    for expectation in expectations(applied, policy):
        key = f"verify {expectation.target.host}:{expectation.target.port}"
        progress.update(key, "probing")
        result = check(expectation, policy.tls.minimum, settle)
        results.append(result)
        opened = {item.name for item in result.checks if item.ok}
        paths = [p for p in expectation.ws_paths if f"WebSocket {p}" in opened]
        if expectation.ws_idle > 0 and paths:
            idle.extend((result, expectation, path) for path in paths)
            keys[id(result)] = key
            progress.update(key, f"WebSocket idle {expectation.ws_idle:g} s")
        else:
            progress.done(key, result.status)
    if idle:
        deadline = started + settle
        with ThreadPoolExecutor(max_workers=min(len(idle), 32)) as pool:
            checks = list(pool.map(lambda job: _idle_check(job[1], job[2], deadline), idle))
        for (result, _, _), item in zip(idle, checks, strict=True):
            result.checks.append(item)
        for result in results:
            if id(result) in keys:
                progress.done(keys[id(result)], result.status)
    return results


def _idle_check(expectation: Expectation, path: str, deadline: float) -> Check:
    """A WebSocket on `path` kept idle for `expectation.ws_idle` seconds. A cut one is tried again
    when the first try began before `deadline` (a reload still taking effect: the old workers
    keep the old timeouts)."""
    began = time.monotonic()
    ok, seen = websocket_stays_open(expectation.target, path, expectation.ws_idle)
    if ok is False and began < deadline:
        ok, seen = websocket_stays_open(expectation.target, path, expectation.ws_idle)
    return Check(f"WebSocket {path} stays open idle", ok, seen)


def failed(results: Iterable[Verification]) -> bool:
    return any(result.status == FAILED for result in results)


def results_text(results: list[Verification]) -> str:
    if not results:
        return ""
    marks = {VERIFIED: "✓", FAILED: "✗", INCONCLUSIVE: "?", SKIPPED: "-"}
    lines = ["Verification:"]
    for result in results:
        lines.append(
            f"  {marks[result.status]} {result.resource} {result.endpoint}: {result.status}"
        )
        if result.skipped:
            lines.append(f"      {result.skipped}")
        lines.extend(f"      note: {note}" for note in result.notes)
        for item in result.checks:
            mark = {True: "ok", False: "FAILED", None: "inconclusive"}[item.ok]
            lines.append(f"      {item.name}: {mark} ({item.detail})")
    return "\n".join(lines) + "\n"
