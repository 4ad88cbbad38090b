"""Where the Nginx playbooks of `playbooks/` are installed; they run through the shared Ansible
machinery (`remediate.ansible_run.run_playbook`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from remediate.errors import RemediateError

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
