"""A head start for `remediate plan` on Nginx hosts.

(It lives beside the Nginx provider's package, not in it: importing that package loads the
policy's models, which is what the head start gets ahead of.)

Most of a plan of a large Nginx host is Ansible's: its start, the collection, its exit. The
command's own start (typer, pydantic and the policy's models: about a quarter of a second) used
to come before any of it. So the entry point reads the command line and the policy file first,
with nothing but the standard library, ruamel.yaml and ansible-runner, and when they ask for a
plan that will collect Nginx hosts, starts the collect playbook at once
(`ansible_run.start_ahead`) while the rest of the command loads. The plan adopts that run when
the validated policy asks for exactly the same one (playbook, inventory, forks); any other
outcome stops it (another inventory or forks, a policy that fails validation, a command that
never collects).

Only the collect playbook starts ahead: it runs `nginx -v` and `nginx -T` and reads files, and
changes nothing. So a plan whose policy file then fails validation may already have opened
read-only sessions to the hosts of the inventory it names, for the fraction of a second before
it says why and exits 1. Anything this reading cannot be sure of (a value it does not expect,
an option it does not know, HAProxy hosts that would share the run) means no head start.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from remediate.ansible_run import FORKS, Run, start_ahead
from remediate.errors import RemediateError

DEFAULT_POLICY = Path("remediate.yaml")
COLLECT_PLAYBOOK = Path(__file__).parent / "nginx" / "playbooks" / "collect.yml"
# A policy file is a few hundred bytes; a larger one is read by the command alone.
_MAX_POLICY_BYTES = 1 << 20
# The options of `plan` that take a value, and those that do not.
_VALUE_OPTIONS = frozenset(
    {
        "--policy",
        "-p",
        "--out",
        "--format",
        "--only",
        "--state-dir",
        "--client-logs",
        "--account",
        "--account-tag",
        "--parallel",
        "--shard",
        "--shard-count",
    }
)
_FLAGS = frozenset({"--detailed-exitcode", "--quiet", "-q"})
# A plan narrowed to some accounts or projects, or sharded, reads hosts in one shard at most.
_NARROWING = frozenset({"--account", "--account-tag", "--shard", "--shard-count"})
_SHARD_VARIABLES = ("JOB_COMPLETION_INDEX", "REMEDIATE_SHARDS")


def begin(argv: Sequence[str]) -> Run | None:
    """Start the collection a `plan` command line (`argv`, without the program) will ask for,
    when it and its policy file say which one: the run started, or None."""
    options = plan_options(argv)
    if options is None:
        return None
    policy_file, only = options
    if only is not None and "nginx" not in only:
        return None
    wanted = nginx_collection(policy_file, haproxy_selected=only is None or "haproxy" in only)
    if wanted is None:
        return None
    inventory, forks = wanted
    try:
        return start_ahead(COLLECT_PLAYBOOK, inventory, forks=forks)
    except RemediateError:
        return None  # the command meets the same problem where it collects, and says so


def plan_options(argv: Sequence[str]) -> tuple[Path, list[str] | None] | None:
    """The policy file and `--only` providers of a `plan` command line; None for any other
    command, for help, for a narrowed or sharded plan, and for a line the command itself would
    refuse."""
    if not argv or argv[0] != "plan" or any(os.environ.get(name) for name in _SHARD_VARIABLES):
        return None
    values: dict[str, str] = {}
    args = iter(argv[1:])
    for arg in args:
        name, equals, value = arg.partition("=")
        if arg.startswith("-p") and not arg.startswith("--") and len(arg) > 2:
            name, equals, value = "-p", "=", arg[2:]
        if name in _VALUE_OPTIONS:
            if not equals:
                following = next(args, None)
                if following is None:
                    return None
                value = following
            values["--policy" if name == "-p" else name] = value
        elif arg not in _FLAGS:
            return None
    if _NARROWING & values.keys():
        return None
    only = values.get("--only")
    names = None if only is None else [part.strip() for part in only.split(",")]
    return Path(values.get("--policy", DEFAULT_POLICY)), names


def nginx_collection(policy_file: Path, *, haproxy_selected: bool) -> tuple[Path, int] | None:
    """The inventory and forks of the Nginx collection `policy_file` asks for, read without
    validating it; None when it asks for none, or for one shared with HAProxy hosts."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        if policy_file.stat().st_size > _MAX_POLICY_BYTES:
            return None
        data = YAML(typ="safe", pure=True).load(policy_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, YAMLError, RecursionError):
        # Unreadable, or not YAML (ruamel raises ValueError for a date such as 2020-13-45): the
        # command reads it again and says what is wrong.
        return None
    if not isinstance(data, dict):
        return None
    nginx, haproxy = data.get("nginx"), data.get("haproxy")
    if haproxy_selected and isinstance(haproxy, dict) and haproxy.get("inventory") is not None:
        return None
    if not isinstance(nginx, dict):
        return None
    inventory, forks = nginx.get("inventory"), nginx.get("forks", FORKS)
    if not isinstance(inventory, str) or type(forks) is not int:
        return None
    path = Path(inventory)
    return (path, forks) if path.exists() else None
