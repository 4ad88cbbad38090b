"""The Nginx scenario (placeholder until the provider lands)."""

from __future__ import annotations

from typing import Any


def scenario(server_blocks: int, files: int, log: Any) -> dict[str, Any]:
    return {}
