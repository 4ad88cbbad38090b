"""The policy file: every kind of bad input is one line naming file, line and field; exit 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

WritePolicy = Callable[..., Path]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ntls:\n  minimum: '1.1'\n", ":3: tls.minimum: must be '1.2' or '1.3'"),
        (
            "version: 1\naws:\n  regions: [us-east-1]\n  region: x\n",
            ":4: aws.region: unknown setting",
        ),
        ("http2: sometimes\n", ":1: http2: input should be a valid boolean"),
        ("aws:\n  regions: us-east-1\n", ":2: aws.regions: input should be a valid list"),
        ("tls: [\n", ":2: malformed YAML"),
        (
            "exclude:\n  - match: '*'\n    reason: r\n  - match: x\n",
            ":4: exclude[1].reason: required setting is missing",
        ),
        ("version: 2\n", ":1: version: must be 1"),
        ("- just\n- a list\n", ":1: the policy must be a mapping"),
    ],
)
def test_bad_policy_is_one_clear_line(
    cli: Cli, write_policy: WritePolicy, text: str, expected: str
) -> None:
    path = write_policy(text)
    for args in (("policy", "check", str(path)), ("plan", "-p", str(path))):
        result = cli(*args)
        assert result.code == 1
        lines = result.stderr.strip().splitlines()
        assert lines == [lines[0]], result.stderr
        assert lines[0].startswith(f"error: {path}{expected}"), lines[0]
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_missing_policy_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", "-p", str(tmp_path / "nope.yaml"))
    assert result.code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: policy file not found"


def test_unquoted_version_number_means_what_it_says(cli: Cli, write_policy: WritePolicy) -> None:
    path = write_policy("tls:\n  minimum: 1.3\naws:\n  regions: [eu-west-1]\n")
    result = cli("policy", "check", str(path))
    assert result.code == 0, result.stderr
    assert "TLS minimum 1.3" in result.stdout
    assert "providers: aws" in result.stdout


def test_schema_is_json_schema_of_the_policy(cli: Cli) -> None:
    result = cli("policy", "schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"tls", "http2", "websocket", "aws", "gcp", "haproxy", "nginx", "exclude"} <= set(
        schema["properties"]
    )


def test_policy_without_providers_is_an_error(cli: Cli, write_policy: WritePolicy) -> None:
    result = cli("plan", "-p", str(write_policy("version: 1\n")))
    assert result.code == 1
    assert "configures no provider" in result.stderr
