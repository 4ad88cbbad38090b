"""The package changes nothing process-wide as a side effect: importing any module of it leaves
the environment and the libraries alone, and what the sandbox's moto server changes in moto and
werkzeug lasts only while one runs. Each check runs in a fresh interpreter, so nothing another
test started in this process can hide a leak."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from remediate.sandbox.aws import environment


def run_python(source: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_every_module_changes_nothing_process_wide() -> None:
    run_python(
        """
        import importlib, logging, os, pkgutil

        from moto.elbv2.responses import ELBV2Response

        import remediate

        environ = dict(os.environ)
        handler = ELBV2Response.modify_listener
        level = logging.getLogger("werkzeug").level
        modules = pkgutil.walk_packages(remediate.__path__, "remediate.")
        names = [m.name for m in modules if m.name != "remediate.__main__"]  # runs the CLI
        assert "remediate.sandbox.aws" in names and "remediate.sandbox.compute" in names, names
        for name in names:
            importlib.import_module(name)
        assert dict(os.environ) == environ
        assert ELBV2Response.modify_listener is handler
        assert logging.getLogger("werkzeug").level == level
        """
    )


def test_moto_server_changes_last_only_while_one_runs() -> None:
    run_python(
        """
        import logging

        from moto.elbv2.responses import ELBV2Response

        from remediate.sandbox.aws import MotoServer

        handler = ELBV2Response.modify_listener
        log = logging.getLogger("werkzeug")
        first = MotoServer()
        second = MotoServer()
        assert ELBV2Response.modify_listener is not handler
        assert log.level == logging.ERROR
        first.stop()
        assert ELBV2Response.modify_listener is not handler, "the other server still runs"
        second.stop()
        assert ELBV2Response.modify_listener is handler
        assert log.level == logging.NOTSET
        """
    )


def test_environment_restores_only_what_it_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("REMEDIATE_SCOPE_PROBE", "before")
    with environment({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}):
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
        # Changed by someone else (another thread, a library) meanwhile: not ours to undo.
        os.environ["REMEDIATE_SCOPE_PROBE"] = "kept"
    assert os.environ["AWS_PROFILE"] == "production"
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert os.environ["REMEDIATE_SCOPE_PROBE"] == "kept"
