"""The client-side rate limit of AWS discovery: REMEDIATE_AWS_RATE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.errors import DiscoveryError
from remediate.providers.aws.discover import RateLimit
from remediate.sandbox.aws import MotoServer, seed_fleet
from tests.conftest import Cli

POLICY = """\
version: 1
tls:
  minimum: "1.2"
aws:
  regions: [us-east-1, eu-west-1]
"""


@pytest.mark.parametrize("value", ["fast", "0", "-1/4", "20/0", "20/x"])
def test_a_bad_rate_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REMEDIATE_AWS_RATE", value)
    with pytest.raises(DiscoveryError, match="REMEDIATE_AWS_RATE"):
        RateLimit.from_env()


def test_rate_and_burst_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATE_AWS_RATE", "5/10")
    limit = RateLimit.from_env()
    assert limit is not None
    assert (limit.rate, limit.burst) == (5.0, 10)
    monkeypatch.setenv("REMEDIATE_AWS_RATE", "off")
    assert RateLimit.from_env() is None


@pytest.mark.parametrize("value", ["off", "5/3"])
def test_plan_is_the_same_with_or_without_pacing(
    aws: MotoServer,
    cli: Cli,
    write_policy: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    seed_fleet()
    monkeypatch.setenv("REMEDIATE_AWS_RATE", value)
    result = cli("plan", "-p", str(write_policy(POLICY)), "--quiet")
    assert result.code == 0, result.stderr
    assert "ELBSecurityPolicy-2016-08" in result.stdout
