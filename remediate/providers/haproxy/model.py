"""The HAProxy provider's policy section and resource kinds."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field

from remediate.policy import Section


class HAProxySettings(Section):
    inventory: Path | None = Field(
        default=None,
        description="Any Ansible inventory of HAProxy hosts; a relative path is read from the "
        "current directory. Host variables: haproxy_config_paths, haproxy_binary, "
        "haproxy_reload_command, haproxy_backup_dir.",
    )
    websocket_backends: list[str] = Field(
        default_factory=list,
        description='Backends (or listen sections) that carry WebSockets; ["*"] means every '
        "HTTP backend.",
    )
    timeout_tunnel: str = Field(
        default="1h",
        pattern=r"^[0-9]+(us|ms|s|m|h|d)?$",
        description="The `timeout tunnel` a WebSocket backend gets when it has none (HAProxy "
        "time format: 1h, 3600s...).",
    )
    websocket_idle_check_max: str = Field(
        default="30s",
        pattern=r"^[0-9]+(us|ms|s|m|h|d)?$",
        description="Verification keeps a WebSocket through each WebSocket backend idle just past "
        "the frontend's `timeout client`, to show `timeout tunnel` keeps it open; a client "
        "timeout longer than this is not waited for (the check is skipped with a note).",
    )


class Kind(StrEnum):
    HOST = "haproxy-host"
    FILE = "file"
