"""Fault injection: plan and apply through a proxy that makes moto (AWS) and the local Compute API
(GCP) fail the way cloud APIs do (5xx, throttling storms, resets, lost answers, expired
credentials, AccessDenied on writes, a black hole). After each scenario the real state, read back
from the emulator directly, must equal what the journal says happened, and a second run without
faults must converge to a clean plan.

Select with `pytest -m faults`; the timeouts are lowered through the REMEDIATE_*TIMEOUT variables
so that the whole file stays short.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

# The providers' modules are imported up front, so that the timings below measure network waits
# rather than the first import of the cloud client libraries.
import remediate.providers.aws.executor
import remediate.providers.gcp.executor  # noqa: F401
from bench.proxy import Proxy, Request, Response
from remediate.journal import Journal, RecordedChange
from remediate.model import Change
from remediate.providers.gcp.rules import same_resource
from remediate.sandbox.aws import Fleet, MotoServer
from remediate.sandbox.compute import ComputeServer
from tests.conftest import Cli
from tests.faults import Faults, Kind

pytestmark = pytest.mark.faults

# Seconds: connect, read per attempt, one call in all, while faults are injected.
TIMEOUTS = {
    "REMEDIATE_CONNECT_TIMEOUT": "1",
    "REMEDIATE_READ_TIMEOUT": "2",
    "REMEDIATE_TIMEOUT": "5",
}
AWS_POLICY = """
version: 1
tls:
  minimum: "1.2"
http2: true
aws:
  regions: [us-east-1, eu-west-1]
"""
SHOP, API = "shop-prod", "api-prod"
GCP_POLICY = f"""
version: 1
tls:
  minimum: "1.2"
gcp:
  projects: [{SHOP}, {API}]
"""
HTTP2 = "routing.http2.enabled"


@dataclass
class Figures:
    """Per scenario: changes whose journal entry matches reality (held), whose entry says the
    opposite of what happened (lost), and resources left neither as before nor as planned."""

    held: int = 0
    lost: int = 0
    half_changed: int = 0


FIGURES: dict[str, Figures] = {}


def summary(write: Callable[[str], None]) -> None:
    """The figures of the scenarios that ran (the terminal summary of tests/conftest.py)."""
    if not FIGURES:
        return
    write("fault scenarios: held / lost / half-changed (changes)")
    for name, figures in sorted(FIGURES.items()):
        write(f"  {name:<28} {figures.held:>3} / {figures.lost:>3} / {figures.half_changed:>3}")
    held = sum(f.held for f in FIGURES.values())
    lost = sum(f.lost for f in FIGURES.values())
    half = sum(f.half_changed for f in FIGURES.values())
    write(f"  {len(FIGURES)} scenarios: {held} held, {lost} lost, {half} half-changed")


@contextmanager
def low_timeouts(monkeypatch: pytest.MonkeyPatch, total: str = "5") -> Iterator[None]:
    """Short waits while faults are injected, so that a black hole or a call failing on every
    attempt is given up quickly; the defaults again afterwards (moto on a loaded machine can take
    a second to answer)."""
    for name, value in {**TIMEOUTS, "REMEDIATE_TIMEOUT": total}.items():
        monkeypatch.setenv(name, value)
    try:
        yield
    finally:
        for name in TIMEOUTS:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No client-side rate limit: the faults are the only weather."""
    monkeypatch.setenv("REMEDIATE_AWS_RATE", "off")


def compare(name: str, planned: list[Change], journal: list[RecordedChange], real: Any) -> Figures:
    """Each planned change against the journal and the state read back: `real(change)` is the
    attribute's value now. A change the journal does not list must be unchanged."""
    outcomes = {(r.change.resource, r.change.attribute): r for r in journal}
    figures = Figures()
    states: dict[str, set[str]] = {}
    problems: list[str] = []
    for change in planned:
        value = real(change)
        if _same(value, change.after):
            state = "changed"
        elif _same(value, change.before):
            state = "unchanged"
        else:
            state = "other"
        states.setdefault(change.resource, set()).add(state)
        recorded = outcomes.get((change.resource, change.attribute))
        outcome = recorded.outcome if recorded else "not journaled"
        if (outcome, state) in (("applied", "changed"), ("failed", "unchanged")) or (
            recorded is None and state == "unchanged"
        ):
            figures.held += 1
        else:
            figures.lost += 1
            message = recorded.message if recorded else ""
            problems.append(f"{change.resource} {change.attribute}: {outcome}, {state} {message}")
    figures.half_changed = sum(1 for found in states.values() if "other" in found or len(found) > 1)
    FIGURES[name] = figures
    assert not problems, "\n".join(problems)
    assert figures.half_changed == 0
    return figures


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, str) and isinstance(expected, str):
        return same_resource(value, expected) if "/" in value else value == expected
    if isinstance(value, dict) and isinstance(expected, dict):
        return all(value.get(key) == item for key, item in expected.items())
    return bool(value == expected)


def last_apply(state_dir: Path) -> list[RecordedChange]:
    journal = Journal(state_dir)
    runs = journal.runs(kind="apply", limit=1)
    return journal.run(runs[0].id).changes if runs else []


# -- AWS --


@pytest.fixture
def aws_policy(write_policy: Any) -> Path:
    path: Path = write_policy(AWS_POLICY, "aws.yaml")
    return path


def aws_real(server: MotoServer) -> Any:
    """`real(change)` for ELBv2, read from moto directly (not through the proxy)."""
    clients: dict[str, Any] = {}

    def client(arn: str) -> Any:
        region = arn.split(":")[3]
        if region not in clients:
            clients[region] = boto3.client("elbv2", region_name=region, endpoint_url=server.url)
        return clients[region]

    def real(change: Change) -> Any:
        elbv2 = client(change.resource)
        if ":listener/" in change.resource:
            listener = elbv2.describe_listeners(ListenerArns=[change.resource])["Listeners"][0]
            if change.attribute == "ssl_policy":
                return listener.get("SslPolicy")
            alpn = listener.get("AlpnPolicy") or [None]
            return None if alpn[0] in (None, "None") else alpn[0]
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=change.resource)
        value = {a["Key"]: a["Value"] for a in attributes["Attributes"]}.get(change.attribute)
        return value is None or value == "true"

    return real


@dataclass(frozen=True)
class Scenario:
    kind: Kind
    rate: float = 1.0
    after: int = 0
    resets: float = 0.0

    @property
    def budget(self) -> str:
        """REMEDIATE_TIMEOUT: weather (a share of calls failing) is retried within one call's
        total budget, so it gets the room a real run has and a streak of failures does not end a
        call; faults that hit every attempt keep a low budget, so they are given up quickly."""
        return "30" if self.rate < 1.0 else "5"


AWS_SCENARIOS = {
    "aws 503 on 30%, 5% resets": Scenario(Kind.UNAVAILABLE, 0.3, resets=0.05),
    "aws throttling storm": Scenario(Kind.THROTTLED, 0.3),
    "aws resets on 20%": Scenario(Kind.RESET, 0.2),
    "aws lost answers (500)": Scenario(Kind.LOST_500),
    "aws cut-off answers": Scenario(Kind.LOST_CUT),
    "aws expired token": Scenario(Kind.EXPIRED, after=5),
    "aws AccessDenied": Scenario(Kind.DENIED),
}


@pytest.mark.parametrize("name", list(AWS_SCENARIOS))
def test_aws_apply_through_faults_journal_equals_state(
    name: str,
    fleet: Fleet,
    aws: MotoServer,
    cli: Cli,
    aws_policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = AWS_SCENARIOS[name]
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(aws_policy), "--out", str(saved), "--quiet").code == 0
    planned = _planned(saved)
    assert len(planned) >= 6
    faults = Faults(
        "aws", scenario.kind, rate=scenario.rate, after=scenario.after, resets=scenario.resets
    )
    with Proxy(aws.url, intercept=faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        with low_timeouts(monkeypatch, scenario.budget):
            result = cli(
                "apply", str(saved), "-p", str(aws_policy), "--auto-approve", "--no-verify"
            )
        assert faults.injected[scenario.kind.value] > 0
        assert "Traceback" not in result.stderr
        compare(name, planned, last_apply(tmp_path / "state"), aws_real(aws))
        _expect(scenario.kind, result.code, result.stdout + result.stderr)
        faults.active = False
        _converges(cli, aws_policy)


def _expect(kind: Kind, code: int, output: str) -> None:
    """What the user sees: retried faults are invisible, the others are reported."""
    if kind in (Kind.UNAVAILABLE, Kind.THROTTLED, Kind.RESET, Kind.LOST_500, Kind.LOST_CUT):
        assert code == 0, output
    elif kind is Kind.DENIED:
        assert code == 1, output
        assert "AccessDenied" in output or "403" in output, output
    else:
        assert code in (1, 3), output


def _converges(cli: Cli, policy: Path) -> None:
    again = cli("apply", "-p", str(policy), "--auto-approve", "--no-verify", "--quiet")
    assert again.code == 0, again.stdout + again.stderr
    clean = cli("plan", "-p", str(policy), "--detailed-exitcode", "--quiet")
    assert clean.code == 0, clean.stdout + clean.stderr


def _planned(saved: Path) -> list[Change]:
    from remediate.model import Plan

    return list(Plan.load(saved).changes)


def test_aws_black_hole_fails_within_the_budget_naming_the_endpoint(
    fleet: Fleet, aws: MotoServer, cli: Cli, aws_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults("aws", Kind.BLACK_HOLE)
    with Proxy(aws.url, intercept=faults) as proxy, low_timeouts(monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = cli("plan", "-p", str(aws_policy), "--quiet")
        took = time.monotonic() - (faults.first or 0)
    lines = result.stderr.strip().splitlines()
    assert result.code == 1
    assert len(lines) == 1, result.stderr
    assert proxy.url in lines[0] and "timeout" in lines[0].lower(), lines[0]
    assert took < 5 + 1 + 2 + 3, took  # the budget, one more attempt, slack


def test_aws_closed_port_fails_fast(
    aws: MotoServer, cli: Cli, aws_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    refusal_budget(monkeypatch)
    started = time.monotonic()
    result = cli("plan", "-p", str(aws_policy), "--quiet")
    took = time.monotonic() - started
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Could not connect to the endpoint URL" in result.stderr
    assert endpoint in result.stderr
    assert took < REFUSAL_BOUND, took


# A budget in which retried refusals would keep a run busy for 25 s or more (AWS retries until
# 30 - 5 s, GCP until 30 s): a run that ends well before has not retried them. A bound, not a
# speed target: it holds however loaded the machine is, short of a 15 s start.
REFUSAL_BOUND = 15


def refusal_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("REMEDIATE_CONNECT_TIMEOUT", "5"),
        ("REMEDIATE_READ_TIMEOUT", "5"),
        ("REMEDIATE_TIMEOUT", "30"),
    ):
        monkeypatch.setenv(name, value)


def test_aws_cut_off_answer_to_a_read_is_one_line(
    fleet: Fleet, aws: MotoServer, cli: Cli, aws_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore does not retry an answer it cannot parse (ResponseParserError): discovery stops
    with one line, never a traceback."""

    def cut(request: Request, forward: Callable[[], Response]) -> Response:
        answer = forward()
        return Response(answer.status, answer.headers, answer.body[: len(answer.body) // 2])

    with Proxy(aws.url, intercept=cut) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = cli("plan", "-p", str(aws_policy), "--quiet")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "answer could not be read (cut off or malformed)" in lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- GCP --


@pytest.fixture(scope="module")
def compute_server() -> Iterator[ComputeServer]:
    server = ComputeServer(operation_polls=2)
    yield server
    server.stop()


@pytest.fixture
def compute(compute_server: ComputeServer) -> ComputeServer:
    compute_server.reset()
    return compute_server


@pytest.fixture
def gcp_policy(write_policy: Any) -> Path:
    path: Path = write_policy(GCP_POLICY, "gcp.yaml")
    return path


def seed_gcp(server: ComputeServer) -> None:
    """Global and regional proxies without a policy, two on a shared TLS 1.0 policy, and a
    remediate-tls policy of another project that drifted to TLS 1.0 (a PATCH with fingerprint)."""
    service = server.backend_service(SHOP, "web")
    url_map = server.url_map(SHOP, "web", service)
    shared = server.ssl_policy(SHOP, "legacy-compat")
    for name in ("web", "shop", "cart"):
        server.https_proxy(SHOP, name, url_map)
    for name in ("legacy-a", "legacy-b"):
        server.https_proxy(SHOP, name, url_map, shared)
    for region in ("europe-west1", "us-central1"):
        regional = server.url_map(
            SHOP,
            f"web-{region}",
            server.backend_service(SHOP, f"web-{region}", region=region),
            region=region,
        )
        server.https_proxy(SHOP, f"web-{region}", regional, region=region)
    drifted = server.ssl_policy(API, "remediate-tls", "TLS_1_0", "COMPATIBLE")
    api_map = server.url_map(API, "api", server.backend_service(API, "api"))
    server.https_proxy(API, "api", api_map, drifted)


def gcp_real(server: ComputeServer) -> Any:
    """`real(change)` for the Compute API, read from the server's state directly."""

    def real(change: Change) -> Any:
        if change.resource not in server.links():
            return None
        resource = server.get(change.resource)
        if "/targetHttpsProxies/" in change.resource:
            return resource.get("sslPolicy")
        if change.attribute == "ssl_policy":
            return {key: resource.get(key) for key in ("name", "minTlsVersion", "profile")}
        return resource.get(change.attribute)

    return real


GCP_SCENARIOS = {
    "gcp 503 on 15%, 5% resets": Scenario(Kind.UNAVAILABLE, 0.15, resets=0.05),
    "gcp resets on 20%": Scenario(Kind.RESET, 0.2),
    "gcp 429 storm": Scenario(Kind.THROTTLED, 0.3),
    "gcp lost answers (500)": Scenario(Kind.LOST_500),
    "gcp cut-off answers": Scenario(Kind.LOST_CUT),
    "gcp expired credentials": Scenario(Kind.EXPIRED, after=14),
    "gcp permission denied": Scenario(Kind.DENIED),
}


@pytest.mark.parametrize("name", list(GCP_SCENARIOS))
def test_gcp_apply_through_faults_journal_equals_state(
    name: str,
    compute: ComputeServer,
    cli: Cli,
    gcp_policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = GCP_SCENARIOS[name]
    seed_gcp(compute)
    faults = Faults(
        "gcp",
        scenario.kind,
        rate=scenario.rate,
        after=scenario.after,
        resets=scenario.resets,
        upstream=compute.url,
    )
    with Proxy(compute.url, intercept=faults) as proxy:
        monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", proxy.url)
        faults.active = scenario.kind in (Kind.UNAVAILABLE, Kind.RESET, Kind.THROTTLED)
        saved = tmp_path / "plan.json"
        with low_timeouts(monkeypatch, scenario.budget):
            planned_run = cli("plan", "-p", str(gcp_policy), "--out", str(saved), "--quiet")
        assert planned_run.code == 0, planned_run.stderr  # discovery survives the weather
        planned = _planned(saved)
        assert len(planned) >= 10
        faults.active = True
        faults.seen = 0
        with low_timeouts(monkeypatch, scenario.budget):
            result = cli(
                "apply", str(saved), "-p", str(gcp_policy), "--auto-approve", "--no-verify"
            )
        assert faults.injected[scenario.kind.value] > 0
        assert "Traceback" not in result.stderr
        compare(name, planned, last_apply(tmp_path / "state"), gcp_real(compute))
        _expect(scenario.kind, result.code, result.stdout + result.stderr)
        faults.active = False
        _converges(cli, gcp_policy)


def test_gcp_black_hole_fails_within_the_budget_naming_the_endpoint(
    compute: ComputeServer, cli: Cli, gcp_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_gcp(compute)
    faults = Faults("gcp", Kind.BLACK_HOLE)
    with Proxy(compute.url, intercept=faults) as proxy, low_timeouts(monkeypatch):
        monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", proxy.url)
        result = cli("plan", "-p", str(gcp_policy), "--quiet")
        took = time.monotonic() - (faults.first or 0)  # from the first call: imports aside
    # Each project is a unit, read side by side: one line each, both within the one budget.
    *lines, summary = result.stderr.strip().splitlines()
    assert result.code == 1
    assert [line.split(":", 2)[1] for line in lines] == [f" gcp {API}", f" gcp {SHOP}"]
    assert all(proxy.url in line and "no answer" in line for line in lines), lines
    assert summary == "2 units could not be read; the report covers the others"
    assert took < 5 + 1 + 2 + 3, took  # the budget, one more attempt, slack


def test_gcp_closed_port_fails_fast(
    cli: Cli, gcp_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", endpoint)
    refusal_budget(monkeypatch)
    started = time.monotonic()
    result = cli("plan", "-p", str(gcp_policy), "--quiet")
    assert result.code == 1
    *lines, _ = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(endpoint in line for line in lines), result.stderr
    assert time.monotonic() - started < REFUSAL_BOUND


def test_bad_timeout_setting_is_one_line(
    cli: Cli, gcp_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("REMEDIATE_READ_TIMEOUT", "soon")
    result = cli("plan", "-p", str(gcp_policy), "--quiet")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        "error: REMEDIATE_READ_TIMEOUT='soon': expected a number of seconds above 0"
    ]
