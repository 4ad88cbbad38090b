"""The gcp-api executor in-process against the local Compute stand-in, beyond the shared
contract: global and regional target HTTPS proxies and target SSL proxies, remediate's own SSL
policies created, corrected and (on rollback) deleted, a resource changed by someone else between
the plan and the write (stale fingerprint, a policy created meanwhile), and a failed policy write
holding back the proxies that would use it. Every assertion reads the stand-in's state back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from remediate import engine, executors, undo
from remediate.executors import Outcome, Status
from remediate.journal import Journal
from remediate.model import Change
from remediate.policy import Policy, parse
from remediate.progress import Silent
from remediate.sandbox.compute import ComputeServer, canonical
from tests.contract.fault_proxy import FaultProxy

pytestmark = pytest.mark.contract

PROJECT = "shop-prod"
REGION = "europe-west1"
COMPUTE = "https://www.googleapis.com/compute/v1"
OWNED = f"{COMPUTE}/projects/{PROJECT}/global/sslPolicies/remediate-tls"
OWNED_EU = f"{COMPUTE}/projects/{PROJECT}/regions/{REGION}/sslPolicies/remediate-tls"


@pytest.fixture(scope="module")
def server() -> Iterator[ComputeServer]:
    compute = ComputeServer(operation_polls=2)
    yield compute
    compute.stop()


@dataclass
class Fleet:
    """A project with a weak global HTTPS proxy, a weak regional one, a weak SSL proxy and
    the SSL policies they use."""

    server: ComputeServer
    policy: Policy
    web: str
    eu: str
    tcp: str
    weak: str
    weak_eu: str
    strict: str

    def plan(self) -> list[Change]:
        return engine.plan(self.policy, record=False).changes

    def executor(self) -> executors.Executor:
        return executors.get("gcp-api", executors.Settings.from_policy(self.policy), Silent())

    def ssl_policy_of(self, link: str) -> str | None:
        value = self.server.get(link).get("sslPolicy")
        return canonical(value) if value else None

    def exists(self, link: str) -> bool:
        return canonical(link) in self.server.links()


@pytest.fixture
def fleet(server: ComputeServer, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    server.reset()
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", server.url)
    service = server.backend_service(PROJECT, "web")
    url_map = server.url_map(PROJECT, "web", service)
    service_eu = server.backend_service(PROJECT, "web-eu", region=REGION)
    url_map_eu = server.url_map(PROJECT, "web-eu", service_eu, region=REGION)
    weak = server.ssl_policy(PROJECT, "legacy", "TLS_1_0", "COMPATIBLE")
    weak_eu = server.ssl_policy(PROJECT, "legacy-eu", "TLS_1_0", "COMPATIBLE", region=REGION)
    strict = server.ssl_policy(PROJECT, "strict", "TLS_1_2", "RESTRICTED")
    return Fleet(
        server=server,
        policy=parse(f"gcp:\n  projects: [{PROJECT}]\n"),
        web=server.https_proxy(PROJECT, "web", url_map, weak),
        eu=server.https_proxy(PROJECT, "eu", url_map_eu, weak_eu, region=REGION),
        tcp=server.ssl_proxy(PROJECT, "tcp", service, weak),
        weak=weak,
        weak_eu=weak_eu,
        strict=strict,
    )


def statuses(outcomes: list[Outcome]) -> dict[tuple[str, str], tuple[Status, str]]:
    return {
        (canonical(o.change.resource), o.change.attribute): (o.status, o.message) for o in outcomes
    }


def test_every_proxy_kind_gets_remediates_policy_of_its_scope(fleet: Fleet) -> None:
    changes = fleet.plan()
    assert {(canonical(c.resource), c.kind) for c in changes} == {
        (canonical(OWNED), "ssl-policy"),
        (canonical(OWNED_EU), "ssl-policy"),
        (canonical(fleet.web), "target-https-proxy"),
        (canonical(fleet.eu), "target-https-proxy"),
        (canonical(fleet.tcp), "target-ssl-proxy"),
    }
    outcomes = fleet.executor().apply(changes)
    assert {status for status, _ in statuses(outcomes).values()} == {Status.APPLIED}
    assert fleet.ssl_policy_of(fleet.web) == canonical(OWNED)
    assert fleet.ssl_policy_of(fleet.tcp) == canonical(OWNED)
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)
    for owned in (OWNED, OWNED_EU):
        created = fleet.server.get(owned)
        assert (created["minTlsVersion"], created["profile"]) == ("TLS_1_2", "MODERN")
    assert fleet.plan() == []


def test_a_rollback_detaches_every_proxy_and_deletes_the_policies_it_created(
    fleet: Fleet, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "state")
    planned = engine.plan(fleet.policy, journal=journal)
    applied = engine.apply(planned, fleet.policy, journal=journal, verify=False)
    assert applied.status == "applied"
    result = undo.rollback(applied.run_id, fleet.policy, journal=journal)
    assert [o.status for o in result.outcomes] == [Status.APPLIED] * len(planned.changes)
    assert fleet.ssl_policy_of(fleet.web) == canonical(fleet.weak)
    assert fleet.ssl_policy_of(fleet.tcp) == canonical(fleet.weak)
    assert fleet.ssl_policy_of(fleet.eu) == canonical(fleet.weak_eu)
    assert not fleet.exists(OWNED) and not fleet.exists(OWNED_EU)


def test_a_proxy_first_given_a_policy_by_remediate_is_detached_on_rollback(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A proxy that had no SSL policy (Google's default applies) gets none back: a regional
    proxy needs `"sslPolicy": null` in its PATCH for that."""
    for link in (fleet.web, fleet.eu, fleet.tcp):
        fleet.server.test_hooks.touch(link, sslPolicy="")
    journal = Journal(tmp_path / "state")
    planned = engine.plan(fleet.policy, journal=journal)
    assert len(planned.changes) == 5
    applied = engine.apply(planned, fleet.policy, journal=journal, verify=False)
    assert applied.status == "applied"
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)
    result = undo.rollback(applied.run_id, fleet.policy, journal=journal)
    assert result.status == "applied", [o.message for o in result.outcomes]
    assert [fleet.ssl_policy_of(link) for link in (fleet.web, fleet.eu, fleet.tcp)] == [None] * 3
    assert not fleet.exists(OWNED) and not fleet.exists(OWNED_EU)


def test_deleting_a_policy_that_is_already_gone_is_done(fleet: Fleet) -> None:
    changes = fleet.plan()
    fleet.executor().apply(changes)
    created = [c for c in changes if c.kind == "ssl-policy"]
    undo_created = [c.model_copy(update={"before": c.after, "after": None}) for c in created]
    first = fleet.executor().apply([c for c in changes if c.kind != "ssl-policy"])
    assert {o.status for o in first} == {Status.APPLIED}
    for link in (fleet.web, fleet.tcp):
        fleet.server.test_hooks.touch(link, sslPolicy=fleet.strict)
    fleet.server.test_hooks.touch(fleet.eu, sslPolicy="")
    outcomes = fleet.executor().apply(undo_created)
    assert [(o.status, o.message) for o in outcomes] == [(Status.APPLIED, "")] * 2
    assert not fleet.exists(OWNED) and not fleet.exists(OWNED_EU)
    again = fleet.executor().apply(undo_created)
    assert [o.status for o in again] == [Status.APPLIED] * 2


def test_a_regional_proxy_changed_since_the_plan_is_reread_and_written(fleet: Fleet) -> None:
    changes = fleet.plan()
    # Someone edits the proxy (new fingerprint) but leaves its SSL policy as planned from.
    fleet.server.test_hooks.touch(fleet.eu, description="edited in the console")
    outcomes = statuses(fleet.executor().apply(changes))
    assert outcomes[(canonical(fleet.eu), "ssl_policy")] == (Status.APPLIED, "")
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)
    assert fleet.server.get(fleet.eu)["description"] == "edited in the console"


def test_a_regional_proxy_given_another_weak_policy_since_the_plan_still_gets_the_fix(
    fleet: Fleet,
) -> None:
    other = fleet.server.ssl_policy(PROJECT, "other-eu", "TLS_1_1", "COMPATIBLE", region=REGION)
    changes = fleet.plan()
    fleet.server.test_hooks.touch(fleet.eu, sslPolicy=other)
    outcomes = statuses(fleet.executor().apply(changes))
    assert outcomes[(canonical(fleet.eu), "ssl_policy")] == (Status.APPLIED, "")
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)


def test_a_regional_proxy_fixed_by_someone_else_since_the_plan_is_left_alone(
    fleet: Fleet,
) -> None:
    strict_eu = fleet.server.ssl_policy(
        PROJECT, "strict-eu", "TLS_1_2", "RESTRICTED", region=REGION
    )
    changes = fleet.plan()
    fleet.server.test_hooks.touch(fleet.eu, sslPolicy=strict_eu)
    outcomes = statuses(fleet.executor().apply(changes))
    status, message = outcomes[(canonical(fleet.eu), "ssl_policy")]
    assert status is Status.FAILED
    assert message == (
        f"changed since the plan (ssl_policy is now {strict_eu}) and no longer needs this "
        "change; run `remediate plan` again"
    )
    assert fleet.ssl_policy_of(fleet.eu) == canonical(strict_eu)
    assert outcomes[(canonical(fleet.web), "ssl_policy")] == (Status.APPLIED, "")


def test_a_regional_proxy_already_pointing_at_the_target_is_applied(fleet: Fleet) -> None:
    changes = fleet.plan()
    policies = [c for c in changes if c.kind == "ssl-policy"]
    fleet.executor().apply(policies)
    fleet.server.test_hooks.touch(fleet.eu, sslPolicy=OWNED_EU)
    outcomes = statuses(fleet.executor().apply([c for c in changes if c.kind != "ssl-policy"]))
    assert outcomes[(canonical(fleet.eu), "ssl_policy")] == (Status.APPLIED, "")


def test_a_policy_created_by_someone_else_since_the_plan_is_corrected(fleet: Fleet) -> None:
    changes = fleet.plan()
    fleet.server.ssl_policy(PROJECT, "remediate-tls", "TLS_1_0", "COMPATIBLE")
    fleet.server.ssl_policy(PROJECT, "remediate-tls", "TLS_1_2", "MODERN", region=REGION)
    outcomes = statuses(fleet.executor().apply(changes))
    assert {status for status, _ in outcomes.values()} == {Status.APPLIED}
    for owned in (OWNED, OWNED_EU):
        found = fleet.server.get(owned)
        assert (found["minTlsVersion"], found["profile"]) == ("TLS_1_2", "MODERN")


def test_remediates_policy_drifted_is_corrected_field_by_field(fleet: Fleet) -> None:
    fleet.executor().apply(fleet.plan())
    fleet.server.test_hooks.touch(OWNED, minTlsVersion="TLS_1_0", profile="COMPATIBLE")
    changes = fleet.plan()
    assert sorted((c.attribute, c.after) for c in changes) == [
        ("minTlsVersion", "TLS_1_2"),
        ("profile", "MODERN"),
    ]
    outcomes = fleet.executor().apply(changes)
    assert [(o.status, o.observed) for o in outcomes] == [
        (Status.APPLIED, c.after) for c in changes
    ]
    found = fleet.server.get(OWNED)
    assert (found["minTlsVersion"], found["profile"]) == ("TLS_1_2", "MODERN")
    assert fleet.plan() == []


def test_remediates_policy_changed_again_after_the_plan_is_reread_and_corrected(
    fleet: Fleet,
) -> None:
    fleet.executor().apply(fleet.plan())
    fleet.server.test_hooks.touch(OWNED_EU, minTlsVersion="TLS_1_1")
    changes = fleet.plan()
    assert [(c.attribute, c.after) for c in changes] == [("minTlsVersion", "TLS_1_2")]
    fleet.server.test_hooks.touch(OWNED_EU, profile="COMPATIBLE")
    [outcome] = fleet.executor().apply(changes)
    assert (outcome.status, outcome.message) == (Status.APPLIED, "")
    found = fleet.server.get(OWNED_EU)
    assert found["minTlsVersion"] == "TLS_1_2"
    # Only what the plan asked for is written: the profile edited meanwhile stays.
    assert found["profile"] == "COMPATIBLE"


def test_a_failed_policy_write_holds_back_the_proxies_that_would_use_it(fleet: Fleet) -> None:
    changes = fleet.plan()
    fleet.server.test_hooks.fail_next(OWNED, "quota exceeded", code="QUOTA_EXCEEDED")
    outcomes = statuses(fleet.executor().apply(changes))
    status, message = outcomes[(canonical(OWNED), "ssl_policy")]
    assert status is Status.FAILED
    assert re.fullmatch(r"operation \S+ failed: QUOTA_EXCEEDED: quota exceeded", message), message
    held_back = f"not attached: SSL policy {OWNED} was not written"
    assert outcomes[(canonical(fleet.web), "ssl_policy")] == (Status.FAILED, held_back)
    assert outcomes[(canonical(fleet.tcp), "ssl_policy")] == (Status.FAILED, held_back)
    # The regional side does not depend on the global policy.
    assert outcomes[(canonical(fleet.eu), "ssl_policy")] == (Status.APPLIED, "")
    assert fleet.ssl_policy_of(fleet.web) == canonical(fleet.weak)
    assert not fleet.exists(OWNED)


def test_an_executor_built_from_the_section_alone_applies_a_saved_plan(fleet: Fleet) -> None:
    changes = fleet.plan()
    settings = executors.Settings(sections=fleet.policy.sections)
    outcomes = executors.get("gcp-api", settings, Silent()).apply(changes)
    assert {o.status for o in outcomes} == {Status.APPLIED}
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)


def test_current_and_fingerprints_of_deleted_resources_are_none(fleet: Fleet) -> None:
    changes = fleet.plan()
    executor = fleet.executor()
    assert isinstance(executor, executors.ReadsCurrent)
    now = executor.current(changes)
    assert now[(fleet.eu, "ssl_policy")] == canonical(fleet.weak_eu)
    assert now[(OWNED, "ssl_policy")] is None
    fleet.executor().apply(changes)
    now = executor.current(changes)
    assert now[(OWNED, "ssl_policy")] == {
        "name": "remediate-tls",
        "minTlsVersion": "TLS_1_2",
        "profile": "MODERN",
    }
    prints = executor.fingerprints(changes)
    assert all(prints[c.resource] is not None for c in changes)


UNAVAILABLE = json.dumps(
    {
        "error": {
            "code": 503,
            "message": "backend unavailable",
            "errors": [{"reason": "backendError"}],
        }
    }
).encode()


def test_a_write_whose_answer_was_lost_after_it_landed_is_applied(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The global proxy's setSslPolicy lands, then every answer to it is lost (503 until the
    retries give up): it reads back as asked, so it is applied, saying what the write answered;
    the proxies that did not fail are applied without a word."""
    changes = fleet.plan()
    owned = next(c.resource for c in changes if canonical(c.resource) == canonical(OWNED))
    asked: list[str] = []

    def lands_then_lost(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        if method == "POST" and path.endswith("/global/targetHttpsProxies/web/setSslPolicy"):
            if not asked:
                fleet.server.test_hooks.touch(fleet.web, sslPolicy=owned)
            asked.append(path)
            return 503, "application/json", UNAVAILABLE
        return None

    with FaultProxy(fleet.server.url) as proxy:
        proxy.responders.append(lands_then_lost)
        monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", proxy.url)
        monkeypatch.setenv("REMEDIATE_TIMEOUT", "8")
        outcomes = statuses(fleet.executor().apply(changes))
    status, message = outcomes.pop((canonical(fleet.web), "ssl_policy"))
    assert status is Status.APPLIED
    assert message.startswith("the write answered ") and "backend unavailable" in message
    assert message.endswith(", but it landed"), message
    assert fleet.ssl_policy_of(fleet.web) == canonical(OWNED)
    assert set(outcomes.values()) == {(Status.APPLIED, "")}
    assert asked


def test_post_quantum_key_exchange_is_created_and_corrected_when_the_policy_asks(
    fleet: Fleet,
) -> None:
    fleet.policy = parse(f"gcp:\n  projects: [{PROJECT}]\n  post_quantum_key_exchange: ENABLED\n")
    outcomes = fleet.executor().apply(fleet.plan())
    assert {o.status for o in outcomes} == {Status.APPLIED}
    for owned in (OWNED, OWNED_EU):
        assert fleet.server.get(owned)["postQuantumKeyExchange"] == "ENABLED"
    fleet.server.test_hooks.touch(OWNED_EU, postQuantumKeyExchange="DEFERRED")
    changes = fleet.plan()
    assert [(c.attribute, c.after) for c in changes] == [("postQuantumKeyExchange", "ENABLED")]
    [outcome] = fleet.executor().apply(changes)
    assert (outcome.status, outcome.message, outcome.observed) == (Status.APPLIED, "", "ENABLED")
    assert fleet.server.get(OWNED_EU)["postQuantumKeyExchange"] == "ENABLED"
    assert fleet.plan() == []


FORBIDDEN = json.dumps(
    {"error": {"code": 403, "message": "cannot read", "errors": [{"reason": "forbidden"}]}}
).encode()


def test_when_the_read_back_fails_a_finished_operation_is_the_evidence(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write's operation finishes, then each read of a resource is refused: the writes are
    applied, saying they were not read back and why; a write that failed stays failed."""
    changes = fleet.plan()
    fleet.server.test_hooks.fail_next(fleet.tcp, "quota exceeded", code="QUOTA_EXCEEDED")
    writes: list[str] = []

    def reads_refused(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        if method != "GET":
            writes.append(path)
        elif writes and "/operations/" not in path:
            return 403, "application/json", FORBIDDEN
        return None

    with FaultProxy(fleet.server.url) as proxy:
        proxy.responders.append(reads_refused)
        monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", proxy.url)
        outcomes = statuses(fleet.executor().apply(changes))
    status, message = outcomes.pop((canonical(fleet.tcp), "ssl_policy"))
    assert status is Status.FAILED
    assert re.fullmatch(r"operation \S+ failed: QUOTA_EXCEEDED: quota exceeded", message), message
    assert len(outcomes) == len(changes) - 1
    for status, message in outcomes.values():
        assert status is Status.APPLIED
        assert message.startswith("its operation finished; not read back (") and "cannot read" in (
            message
        ), message
    assert fleet.ssl_policy_of(fleet.web) == canonical(OWNED)
    assert fleet.ssl_policy_of(fleet.eu) == canonical(OWNED_EU)
    assert fleet.ssl_policy_of(fleet.tcp) == canonical(fleet.weak)
