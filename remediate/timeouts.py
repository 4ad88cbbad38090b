"""Bounded network waits, one set of limits for the AWS and GCP clients.

- `REMEDIATE_CONNECT_TIMEOUT` (default 5): seconds to open a connection.
- `REMEDIATE_READ_TIMEOUT` (default 20): seconds to wait for an answer on an open connection,
  per attempt.
- `REMEDIATE_TIMEOUT` (default 60): seconds one API call may take in all, retries included. Past
  it a transport failure (timeout, reset) is not retried, so an endpoint that accepts connections
  and never answers fails within about this long. Throttling keeps its own retry budget.

A refused connection (nothing listens on the port) is never retried: it fails at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from remediate.errors import RemediateError

CONNECT_ENV = "REMEDIATE_CONNECT_TIMEOUT"
READ_ENV = "REMEDIATE_READ_TIMEOUT"
TOTAL_ENV = "REMEDIATE_TIMEOUT"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 20.0
    total: float = 60.0

    @classmethod
    def from_env(cls) -> Timeouts:
        default = cls()
        return cls(
            connect=_seconds(CONNECT_ENV, default.connect),
            read=_seconds(READ_ENV, default.read),
            total=_seconds(TOTAL_ENV, default.total),
        )


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise RemediateError(f"{name}={value!r}: expected a number of seconds above 0")
    return seconds


def refused(exc: BaseException) -> bool:
    """Whether `exc` is, or wraps, a refused connection (the clients nest their exceptions in
    causes, arguments, `reason` and botocore's `kwargs['error']`)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return True
        kwargs = getattr(item, "kwargs", None)
        pending.extend(
            [
                item.__cause__,
                item.__context__,
                getattr(item, "reason", None),
                kwargs.get("error") if isinstance(kwargs, dict) else None,
                *item.args,
            ]
        )
    return False
