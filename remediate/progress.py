"""Progress on stderr: a live display on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Imported where a terminal shows the live table: quiet runs, CI logs and cron never pay
    # for rich's import (about 35 ms of every command's start-up).
    from rich.live import Live
    from rich.table import Table


class Progress(Protocol):
    def update(self, key: str, message: str) -> None:
        """Report work under way for `key` (a provider and region, a host...)."""

    def done(self, key: str, message: str) -> None:
        """Report that `key` has finished."""


class Silent:
    def update(self, key: str, message: str) -> None:
        return None

    def done(self, key: str, message: str) -> None:
        return None


class Lines:
    """One line per finished step: readable in CI logs and cron mail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def update(self, key: str, message: str) -> None:
        return None

    def done(self, key: str, message: str) -> None:
        with self._lock:
            print(f"{key}: {message}", file=sys.stderr, flush=True)


class LiveTable:
    """A live table of every key's latest status, redrawn in place."""

    def __init__(self, live: Live) -> None:
        self._live = live
        self._rows: dict[str, tuple[str, bool]] = {}
        self._lock = threading.Lock()

    def _render(self) -> Table:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for key, (message, finished) in self._rows.items():
            table.add_row("[green]✓[/]" if finished else "[yellow]…[/]", key, message)
        return table

    def update(self, key: str, message: str) -> None:
        with self._lock:
            self._rows[key] = (message, False)
            self._live.update(self._render())

    def done(self, key: str, message: str) -> None:
        with self._lock:
            self._rows[key] = (message, True)
            self._live.update(self._render())


@contextmanager
def reporter(quiet: bool = False) -> Iterator[Progress]:
    """The right progress display for stderr."""
    if quiet:
        yield Silent()
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    if not console.is_terminal:
        yield Lines()
        return
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        yield LiveTable(live)
