"""Run the Nginx playbooks in `playbooks/` through the shared Ansible machinery
(`remediate.ansible_run`)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from remediate import ansible_run
from remediate.ansible_run import FORKS, PlaybookRun
from remediate.errors import RemediateError
from remediate.hosts import inventory_hosts
from remediate.progress import Progress

__all__ = ["FORKS", "PLAYBOOKS", "PlaybookRun", "inventory_hosts", "playbooks_dir", "run_playbook"]

# The playbooks ship inside the package (pyproject's package-data) and are found through
# importlib.resources, so they work from a wheel as from a checkout.
PLAYBOOKS = resources.files("remediate.providers.nginx") / "playbooks"


def playbooks_dir() -> Path:
    """The directory of the installed playbooks, for running them with ansible-playbook."""
    if not isinstance(PLAYBOOKS, Path) or not PLAYBOOKS.is_dir():
        raise RemediateError(
            f"the playbooks are not a directory on disk ({PLAYBOOKS}): install remediate "
            "unzipped (pip install) to run them on their own"
        )
    return PLAYBOOKS


def run_playbook(
    name: str,
    inventory: Path,
    progress: Progress,
    *,
    extravars: Mapping[str, Any] | None = None,
    limit: list[str] | None = None,
    check: bool = False,
    label: str = "nginx",
    forks: int = FORKS,
    early: Mapping[str, ansible_run.EarlyReader] | None = None,
) -> PlaybookRun:
    """Run `playbooks/<name>` against `inventory`; hosts run in parallel (forks)."""
    return ansible_run.run_playbook(
        PLAYBOOKS / name,
        inventory,
        progress,
        extravars=extravars,
        limit=limit,
        check=check,
        label=label,
        forks=forks,
        early=early,
    )
