"""The Nginx provider's policy section and resource kinds."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field

from remediate.ansible_run import FORKS
from remediate.policy import Section


class NginxSettings(Section):
    inventory: Path | None = Field(
        default=None,
        description="Any Ansible inventory; a relative path is read from the current directory.",
    )
    forks: int = Field(
        default=FORKS, ge=1, le=500, description="How many hosts Ansible reads or writes at once."
    )
    managed_files: Literal["report", "edit"] = Field(
        default="report",
        description=(
            "Files another tool keeps up to date (certbot's options-ssl-nginx.conf, anything "
            "under /etc/letsencrypt/): `report` leaves them alone with a finding naming the file "
            "and the choice; `edit` changes them like any other file, and certbot then stops "
            "updating them."
        ),
    )


class Kind(StrEnum):
    HOST = "nginx-host"
    FILE = "file"
