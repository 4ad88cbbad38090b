"""Units of work: the independent parts of an estate (an AWS account in one region, a GCP
project, a host) that discovery reads side by side, that fail alone, and that shards split.

A provider that can split its estate lists `Unit`s (`Provider.units`) and reads one at a time
(`Provider.discover_unit`); a provider that cannot is one unit named after itself. The engine
selects the units (`Selection`: names, tags, a shard), runs them on a bounded pool
(`run`), and turns a unit's `RemediateError` into a `FailedUnit` that the plan carries, so one
account that denies access neither stops the others nor disappears from the report.

Shards use rendezvous hashing of the unit's key: the shard that owns a unit depends on that key
and the shard count only, so adding or removing an account moves only that account's units, and
going from N to N+1 shards moves about 1/(N+1) of them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from remediate.errors import RemediateError
from remediate.progress import Progress

INDEX_ENV = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes in each pod of an Indexed Job: the pod's shard index."""
COUNT_ENV = "REMEDIATE_SHARDS"
DEFAULT_PARALLEL = 8
PROGRESS_KEY = "units"


R = TypeVar("R")


@dataclass(frozen=True)
class Unit:
    """One independent part of a provider's estate."""

    provider: str
    key: str
    """Stable and unique across providers (`aws/123456789012/us-east-1`): shards hash it."""
    label: str
    """How a person reads it (`aws prod (123456789012) us-east-1`)."""
    names: frozenset[str] = frozenset()
    """What `--account` (or another selector) may call it: an account id, its name."""
    tags: Mapping[str, str] = field(default_factory=dict)
    scope: Any = field(default=None, compare=False, hash=False)
    """The provider's own data for reading this unit (an account and region, credentials)."""


class FailedUnit(BaseModel):
    """A unit that could not be read: the plan covers everything else and says so."""

    model_config = ConfigDict(frozen=True)

    provider: str
    unit: str
    reason: str


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based, as Kubernetes numbers Indexed Job pods)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, value: str | None, count: int | None = None) -> Shard:
        """`I/N`; or, when `value` is None, `JOB_COMPLETION_INDEX` with `count` (or
        `REMEDIATE_SHARDS`); one shard of one when neither is set."""
        env_count = os.environ.get(COUNT_ENV)
        if value is None:
            index_text = os.environ.get(INDEX_ENV)
            if count is None and env_count:
                count = _integer(env_count, COUNT_ENV)
            if count is None:
                if index_text:
                    raise RemediateError(
                        f"{INDEX_ENV}={index_text} is set but not the shard count: pass "
                        f"--shard-count N or set {COUNT_ENV}"
                    )
                return cls()
            index = _integer(index_text or "0", INDEX_ENV)
            where = f"{INDEX_ENV}={index}, shard count {count}"
        else:
            index_text, slash, count_text = value.partition("/")
            if not slash:
                raise RemediateError(f"--shard {value!r}: expected I/N (for example 0/4)")
            index = _integer(index_text, "--shard")
            count = _integer(count_text, "--shard")
            where = f"--shard {value}"
        if count < 1 or not 0 <= index < count:
            raise RemediateError(f"{where}: the index must be 0..N-1 and N at least 1")
        return cls(index, count)

    def owns(self, key: str) -> bool:
        return owner(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def owner(key: str, count: int) -> int:
    """The shard of `count` that owns `key`: the highest of the shards' hashes with the key."""
    return max(range(count), key=lambda index: _weight(key, index))


def _weight(key: str, index: int) -> bytes:
    return hashlib.sha256(f"{index}\0{key}".encode()).digest()


def _integer(text: str, where: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise RemediateError(f"{where}: {text!r} is not a whole number") from None


@dataclass(frozen=True)
class Selection:
    """Which units a run covers: by name (`--account ID|NAME`), by tag (`--account-tag K=V`,
    all must match), by shard; and how many run at once."""

    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    shard: Shard = Shard()
    parallel: int = DEFAULT_PARALLEL

    @classmethod
    def parse(
        cls,
        names: Iterable[str] = (),
        tags: Iterable[str] = (),
        shard: str | None = None,
        shard_count: int | None = None,
        parallel: int | None = None,
    ) -> Selection:
        pairs = []
        for tag in tags:
            key, equals, value = tag.partition("=")
            if not equals or not key.strip():
                raise RemediateError(f"--account-tag {tag!r}: expected KEY=VALUE")
            pairs.append((key.strip(), value.strip()))
        if parallel is not None and parallel < 1:
            raise RemediateError(f"--parallel {parallel}: must be at least 1")
        return cls(
            names=tuple(name.strip() for name in names if name.strip()),
            tags=tuple(pairs),
            shard=Shard.parse(shard, shard_count),
            parallel=parallel or DEFAULT_PARALLEL,
        )

    @property
    def filters(self) -> bool:
        return bool(self.names or self.tags)

    def matches(self, unit: Unit) -> bool:
        """Whether the name and tag filters keep `unit` (the shard is checked apart)."""
        if self.names and not unit.names.intersection(self.names):
            return False
        return all(unit.tags.get(key) == value for key, value in self.tags)

    def choose(self, units: Sequence[Unit]) -> list[Unit]:
        """The units this run reads: those the filters keep that fall in this run's shard."""
        return [unit for unit in units if self.matches(unit) and self.shard.owns(unit.key)]


@dataclass
class Results(Generic[R]):
    done: list[tuple[Unit, R]] = field(default_factory=list)
    failed: list[FailedUnit] = field(default_factory=list)


def run(
    units: Sequence[Unit],
    read: Callable[[Unit], R],
    parallel: int,
    progress: Progress,
) -> Results[R]:
    """`read` each unit on a pool of `parallel` threads; a unit whose read raises a
    `RemediateError` is a `FailedUnit` with its one-line reason, and the others go on. Results
    come back in the order of `units`. Anything else a read raises is a defect and propagates."""
    results: Results[R] = Results()
    if not units:
        return results
    lock = threading.Lock()
    counts = {"done": 0, "failed": 0}
    total = len(units)

    def report() -> None:
        finished = counts["done"] + counts["failed"]
        progress.update(
            PROGRESS_KEY,
            f"{finished}/{total} units done, {total - finished} remaining, "
            f"{counts['failed']} failed",
        )

    def one(unit: Unit) -> tuple[R | None, FailedUnit | None]:
        try:
            value = read(unit)
        except RemediateError as exc:
            progress.done(unit.label, f"not read: {exc}")
            with lock:
                counts["failed"] += 1
                report()
            return None, FailedUnit(provider=unit.provider, unit=unit.label, reason=str(exc))
        with lock:
            counts["done"] += 1
            report()
        return value, None

    with lock:
        report()
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, total))) as pool:
        answers = list(pool.map(one, units))
    for unit, (value, failure) in zip(units, answers, strict=True):
        if failure is not None:
            results.failed.append(failure)
        else:
            results.done.append((unit, value))  # type: ignore[arg-type]
    progress.done(
        PROGRESS_KEY, f"{len(results.done)} of {total} units read, {len(results.failed)} failed"
    )
    return results


def nested(roots: Iterable[str], children: Callable[[str], Iterable[str]]) -> Iterator[str]:
    """Each of `roots` and of the parents nested in them (an organization's OUs, its folders),
    once, breadth first; `children(parent)` is asked after the caller has read `parent`."""
    pending = list(roots)
    visited: set[str] = set()
    while pending:
        parent = pending.pop(0)
        if parent in visited:
            continue
        visited.add(parent)
        yield parent
        pending.extend(children(parent))
