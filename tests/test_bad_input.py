"""Bad input, as a careless or hostile user hands it to the real CLI: every case is one line on
stderr naming the file (and line or field where known), exit 1, no traceback, nothing changed."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.model import Plan
from remediate.sandbox.nginx import private_conf
from tests.conftest import Cli, Result
from tests.loopback import nginx_file_change

POLICY = "version: 1\naws:\n  regions: [us-east-1]\n"
ALB_LINE = (
    "https 2026-01-01T00:00:00.000000Z app/shop/0123 203.0.113.9:5000 10.0.0.1:80 0.001 0.002 "
    '0.000 200 200 10 20 "GET https://shop.example:443/ HTTP/1.1" "PosTerminal/2.1" '
    "ECDHE-RSA-AES128-SHA TLSv1 arn:aws:elasticloadbalancing:x\n"
)


def _alias_bomb() -> str:
    """Nine levels of nine aliases: a few lines that stand for 9^9 strings."""
    lines = ["version: 1", "a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _exclusion(until: str) -> str:
    return POLICY + f"exclude:\n  - match: 'arn:*'\n    reason: POS terminals\n    until: {until}\n"


# (case, file content, expected text after `error: FILE`)
POLICY_CASES: list[tuple[str, bytes, str]] = [
    (
        "month 13",
        _exclusion("2027-13-45").encode(),
        ":7: exclude[0].until: input should be a valid date or datetime, month value is outside",
    ),
    (
        "30 February",
        _exclusion("2027-02-30").encode(),
        ":7: exclude[0].until: input should be a valid date or datetime, day value is outside",
    ),
    ("NUL byte", b"version: 1\naws: {}\n\x00\n", ":3: a binary file (NUL byte), not a YAML policy"),
    ("Latin-1", b"version: 1\n# caf\xe9\naws: {}\n", ":2: a YAML policy is not UTF-8 text"),
    ("UTF-16", POLICY.encode("utf-16"), ": a YAML policy is UTF-16 text; save it as UTF-8"),
    ("binary", bytes(range(1, 256)) * 8, ":2: a YAML policy is not UTF-8 text (byte 0x80)"),
    (
        "3,000 nested flow lists",
        ("version: 1\naws: {regions: " + "[" * 3000 + "]" * 3000 + "}\n").encode(),
        ":2: nested deeper than 50 levels",
    ),
    (
        "deep block nesting",
        ("version: 1\n" + "".join(" " * i + f"k{i}:\n" for i in range(60))).encode(),
        ":51: nested deeper than 50 levels",
    ),
    (
        "alias bomb",
        _alias_bomb().encode(),
        ":2: more than 100000 values once its aliases are expanded (an alias bomb?)",
    ),
    (
        "alias inside itself",
        b"version: 1\naws: &a {regions: [*a]}\n",
        ":2: nested deeper than 50 levels once its aliases are expanded",
    ),
    (
        "control character",
        b"version: 1\naws: {regions: [\x07]}\n",
        ":2: malformed YAML: control character U+0007 is not allowed",
    ),
    ("unknown tag", b"version: 1\naws: !vault {}\n", ":2: malformed YAML: could not determine"),
    ("unreadable int", b"version: 1\naws: {regions: [!!int x]}\n", ":2: malformed YAML: cannot"),
    (
        "huge integer",
        ("version: 1" + "0" * 5000 + "\n").encode(),
        ":1: malformed YAML: cannot read '100000",
    ),
    ("duplicate key", b"version: 1\naws: {}\naws: {}\n", ":3: malformed YAML: found duplicate key"),
    ("two documents", b"version: 1\n---\naws: {}\n", ":2: malformed YAML: but found another"),
    (
        "GCP project",
        b"version: 1\ngcp:\n  projects: [a/../b]\n",
        ":3: gcp.projects[0]: value error, 'a/../b' is not a project id",
    ),
    ("a list", b"- aws\n", ":1: the policy must be a mapping of settings"),
]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(content, expected) for _, content, expected in POLICY_CASES],
    ids=[case for case, _, _ in POLICY_CASES],
)
def test_bad_policy_file(cli: Cli, tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "remediate.yaml"
    path.write_bytes(content)
    for args in (("policy", "check", str(path)), ("plan", "-p", str(path))):
        _one_line(cli(*args), f"error: {path}{expected}")


def test_policy_that_is_not_a_file(cli: Cli, tmp_path: Path) -> None:
    _one_line(cli("policy", "check", str(tmp_path)), f"error: {tmp_path}: cannot read policy file")
    _one_line(cli("policy", "check", "/dev/zero"), "error: /dev/zero: cannot read policy file: a")
    _one_line(cli("apply", "/dev/zero"), "error: /dev/zero: cannot read plan file: a device")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * 500_000)
    _one_line(cli("policy", "check", str(big)), f"error: {big}: policy file too large (over 4 MiB)")


def test_long_policy_file_is_read(cli: Cli, tmp_path: Path) -> None:
    # 80,000 comment lines took 18 s with the round-trip loader (its comment handling is
    # quadratic); the safe loader reads them in linear time.
    path = tmp_path / "remediate.yaml"
    path.write_text("version: 1\n" + "# a comment\n" * 80_000 + "aws: {}\n", encoding="utf-8")
    result = cli("policy", "check", str(path))
    assert result.code == 0, result.stderr
    assert "providers: aws" in result.stdout


def test_dates_are_still_dates(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "remediate.yaml"
    path.write_text(_exclusion("2027-03-31"), encoding="utf-8")
    result = cli("policy", "check", str(path))
    assert result.code == 0, result.stderr


PLAN = {"format_version": 2, "changes": []}
PLAN_CASES: list[tuple[str, bytes, str]] = [
    ("binary", bytes(range(256)) * 8, ":1: a binary file (NUL byte), not a plan"),
    ("gzip", gzip.compress(json.dumps(PLAN).encode()), ":1: a binary file (NUL byte), not a plan"),
    ("Latin-1", b'{"format_version": 2, "run_id": "caf\xe9"}', ":1: a plan is not UTF-8 text"),
    (
        "deep",
        b"[" * 100_000 + b"]" * 100_000,
        ": not a valid plan (damaged or not JSON): nested too deeply",
    ),
    (
        "huge number",
        b'{"format_version": 2' + b"0" * 5000 + b"}",
        ": not a valid plan (damaged or not JSON):",
    ),
    ("empty", b"", ": not a valid plan (damaged or not JSON): Expecting value"),
    ("array", b"[]", ": not a remediate plan (format_version 1 or 2)"),
    (
        "bad provider",
        json.dumps({**PLAN, "changes": [{"provider": "azure"}]}).encode(),
        ": not a valid plan: changes.0.",
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(content, expected) for _, content, expected in PLAN_CASES],
    ids=[case for case, _, _ in PLAN_CASES],
)
def test_bad_plan_file(cli: Cli, tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "fix.json"
    path.write_bytes(content)
    _one_line(cli("apply", str(path)), f"error: {path}{expected}")


def _gzip_log() -> bytes:
    return gzip.compress((ALB_LINE * 20_000).encode())


LOG_CASES: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("corrupt", lambda whole: whole[:40] + b"\xff" * 300 + whole[340:], ": corrupt gzip data"),
    (
        "truncated",
        lambda whole: whole[: len(whole) // 3],
        ": the gzip stream ends early (a truncated file)",
    ),
    ("only the magic bytes", lambda whole: whole[:2], ": the gzip stream ends early"),
]


@pytest.mark.parametrize(
    ("cut", "expected"),
    [(cut, expected) for _, cut, expected in LOG_CASES],
    ids=[case for case, _, _ in LOG_CASES],
)
def test_bad_gzip_log(
    cli: Cli, tmp_path: Path, cut: Callable[[bytes], bytes], expected: str
) -> None:
    path = tmp_path / "alb.log.gz"
    path.write_bytes(cut(_gzip_log()))
    result = cli("clients", str(path))
    line = _one_line(result, "")
    assert line.startswith((f"error: {path}{expected}", f"warning: {path}{expected}")), line


def test_log_format_with_a_regex_capture(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('x 426 "Legacy/1"\n', encoding="utf-8")
    result = cli("clients", str(log), "--nginx-format", '$1abc $status "$http_user_agent"')
    assert result.code == 0, result.stderr
    assert "Legacy/1" in result.stdout


ARGUMENT_CASES: list[tuple[tuple[str, ...], str]] = [
    (("verify", "https://[::1/"), "error: https://[::1/: not a valid URL: Invalid IPv6 URL"),
    (("diagnose", "https://[::1/"), "error: https://[::1/: not a valid URL"),
    (
        ("verify", f"https://{'a' * 64}.example/"),
        f"error: https://{'a' * 64}.example/: invalid host name",
    ),
    (("verify", "https://../"), "error: https://../: invalid host name '..'"),
    (("plan", "--only", ""), "error: --only '': names no provider (aws, gcp, haproxy, nginx)"),
    (("drift", "--only", ","), "error: --only ',': names no provider (aws, gcp, haproxy, nginx)"),
    (("apply", "--only", " , "), "error: --only ' , ': names no provider"),
]


@pytest.mark.parametrize(("args", "expected"), ARGUMENT_CASES)
def test_bad_argument(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "remediate.yaml").write_text(POLICY, encoding="utf-8")
    _one_line(cli(*args), expected)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AWS_ENDPOINT_URL", "not a url", "error: cannot create an ELBv2 client: Invalid endpoint"),
        ("AWS_ENDPOINT_URL", "http://[::1", "error: cannot create an ELBv2 client:"),
        ("REMEDIATE_AWS_RATE", "fast", "REMEDIATE_AWS_RATE"),
        ("REMEDIATE_AWS_RATE", "nan", "REMEDIATE_AWS_RATE"),
        ("REMEDIATE_AWS_RATE", "1e400/2", "REMEDIATE_AWS_RATE"),
    ],
)
def test_bad_environment(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv(name, value)
    policy = tmp_path / "remediate.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    line = _one_line(cli("plan", "-p", str(policy)), "error: ")
    assert expected in line


def test_gcp_endpoint_that_is_not_a_url(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_GCP_ENDPOINT", "http://[::1")
    policy = tmp_path / "remediate.yaml"
    policy.write_text("version: 1\ngcp:\n  projects: [shop-prod]\n", encoding="utf-8")
    _one_line(cli("plan", "-p", str(policy)), "error: GCP endpoint http://[::1: not a valid URL")


def test_state_dir_that_is_a_file(cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("", encoding="utf-8")
    _one_line(cli("history", "--state-dir", str(state)), f"error: {state}: cannot create state")


def test_plan_naming_a_host_outside_the_inventory(cli: Cli, tmp_path: Path) -> None:
    """The inventory's own host is real (a private-prefix nginx tree on this machine); the plan
    names two others, one of them an Ansible pattern: both are named, nothing is written."""
    prefix = tmp_path / "edge"
    for directory in ("conf", "logs", "tmp"):
        (prefix / directory).mkdir(parents=True)
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(private_conf("# web1", ""), encoding="utf-8")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"[web]\nweb1 ansible_connection=local ansible_python_interpreter={sys.executable} "
        f"nginx_prefix={prefix} nginx_conf_path={conf}\n",
        encoding="utf-8",
    )
    policy = tmp_path / "remediate.yaml"
    policy.write_text(f"version: 1\nnginx:\n  inventory: {inventory}\n", encoding="utf-8")
    changes = [nginx_file_change(host) for host in ("ghost", "all")]
    plan = tmp_path / "fix.json"
    Plan(providers=["nginx"], changes=changes).save(plan)
    line = _one_line(
        cli("apply", str(plan), "-p", str(policy), "--no-verify", "-q"),
        "error: plan refused: 2 change",
    )
    assert "(no host ghost in the inventory)" in line
    assert "(no host all in the inventory)" in line
    assert line.endswith("nothing was applied")


def _one_line(result: Result, expected: str) -> str:
    """Exit 1 and a single stderr line starting with `expected`; returns that line."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.code == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected), lines[0]
    return lines[0]
