"""Units, selections and shards: pure, no service behind them."""

from __future__ import annotations

import threading

import pytest

from remediate.errors import DiscoveryError, RemediateError
from remediate.progress import Silent
from remediate.units import Selection, Shard, Unit, owner, run


def units_of(count: int) -> list[Unit]:
    return [
        Unit(
            provider="aws",
            key=f"aws/{index:012d}/{region}",
            label=f"aws {index} {region}",
            names=frozenset({f"{index:012d}", f"team{index}"}),
            tags={"env": "prod" if index % 2 else "dev"},
        )
        for index in range(count)
        for region in ("us-east-1", "eu-west-1")
    ]


def test_each_unit_is_in_exactly_one_shard() -> None:
    units = units_of(50)
    for count in (1, 2, 3, 7):
        shards = [Selection(shard=Shard(index, count)).choose(units) for index in range(count)]
        keys = [unit.key for shard in shards for unit in shard]
        assert sorted(keys) == sorted(unit.key for unit in units)
        # Spread: no shard is empty with a hundred units.
        assert all(shard for shard in shards)


def test_shards_are_stable_when_accounts_come_and_go_and_when_a_shard_is_added() -> None:
    before = {unit.key: owner(unit.key, 4) for unit in units_of(100)}
    # The assignment depends on the key alone: another account does not move any other unit,
    # and neither does the order the units are listed in.
    grown = {unit.key: owner(unit.key, 4) for unit in reversed(units_of(120))}
    assert all(grown[key] == shard for key, shard in before.items())
    # From 4 to 5 shards, units only move to the new shard, about a fifth of them.
    five = {key: owner(key, 5) for key in before}
    moved = [key for key in before if five[key] != before[key]]
    assert all(five[key] == 4 for key in moved)
    assert 0.1 < len(moved) / len(before) < 0.3


def test_the_shard_comes_from_the_option_or_from_the_indexed_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    monkeypatch.delenv("REMEDIATE_SHARDS", raising=False)
    assert Shard.parse(None) == Shard(0, 1)
    assert Shard.parse("2/5") == Shard(2, 5)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert Shard.parse(None, 4) == Shard(3, 4)
    monkeypatch.setenv("REMEDIATE_SHARDS", "6")
    assert Shard.parse(None) == Shard(3, 6)
    monkeypatch.delenv("REMEDIATE_SHARDS")
    with pytest.raises(RemediateError, match="JOB_COMPLETION_INDEX=3 is set but not the shard"):
        Shard.parse(None)
    for bad, message in [
        ("2", "expected I/N"),
        ("a/2", "'a' is not a whole number"),
        ("2/2", "the index must be 0..N-1"),
        ("0/0", "the index must be 0..N-1"),
    ]:
        with pytest.raises(RemediateError, match=message):
            Shard.parse(bad)


def test_filters_by_name_and_tag() -> None:
    units = units_of(4)
    by_name = Selection.parse(names=["team1", "000000000002"]).choose(units)
    assert {unit.label for unit in by_name} == {
        "aws 1 us-east-1",
        "aws 1 eu-west-1",
        "aws 2 us-east-1",
        "aws 2 eu-west-1",
    }
    by_tag = Selection.parse(names=["team1", "team2"], tags=["env=prod"]).choose(units)
    assert {unit.label for unit in by_tag} == {"aws 1 us-east-1", "aws 1 eu-west-1"}
    with pytest.raises(RemediateError, match="--parallel 0: must be at least 1"):
        Selection.parse(parallel=0)


class Recorder(Silent):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def update(self, key: str, message: str) -> None:
        self.lines.append(message)

    def done(self, key: str, message: str) -> None:
        self.lines.append(message)


def test_a_failing_unit_is_reported_and_the_others_run_on_a_bounded_pool() -> None:
    units = units_of(6)
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=5)
    first = {unit.key for unit in units[:3]}

    def read(unit: Unit) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            if unit.key.endswith("000000000003/us-east-1"):
                raise DiscoveryError("AccessDenied: not authorized")
            if unit.key in first:
                gate.wait()  # three run at once: the pool really is parallel
            return unit.key
        finally:
            with lock:
                running -= 1

    progress = Recorder()
    results = run(units, read, 3, progress)
    assert [unit.key for unit, _ in results.done] == [
        unit.key for unit in units if not unit.key.endswith("000000000003/us-east-1")
    ]
    assert [(f.unit, f.reason) for f in results.failed] == [
        ("aws 3 us-east-1", "AccessDenied: not authorized")
    ]
    assert peak <= 3
    assert progress.lines[0] == "0/12 units done, 12 remaining, 0 failed"
    assert "not read: AccessDenied: not authorized" in progress.lines
    assert progress.lines[-1] == "11 of 12 units read, 1 failed"


def test_a_defect_in_a_unit_is_not_turned_into_a_report() -> None:
    def read(unit: Unit) -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run(units_of(1), read, 2, Silent())
