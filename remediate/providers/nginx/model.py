"""The Nginx provider's policy section and resource kinds."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field

from remediate.policy import Section


class NginxSettings(Section):
    inventory: Path | None = Field(
        default=None,
        description="Any Ansible inventory; a relative path is read from the current directory.",
    )


class Kind(StrEnum):
    HOST = "nginx-host"
    FILE = "file"
