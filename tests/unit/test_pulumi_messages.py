"""What a user reads of the Pulumi CLI through the pulumi executor: the first `error:` line of a
failed command (from the Automation API's own `CommandError`), and a preview's summary."""

from __future__ import annotations

from pulumi.automation import CommandError, CommandResult, OpType

from remediate.executors.pulumi import _first_line, _summary


def failed(stdout: str, stderr: str, code: int = 255) -> CommandError:
    return CommandError(CommandResult(stdout=stdout, stderr=stderr, code=code))


def test_the_first_error_line_of_stderr_is_the_message() -> None:
    exc = failed("", "error: no Pulumi.yaml project file found\n  more detail\n")
    assert _first_line(exc) == "error: no Pulumi.yaml project file found"


def test_an_error_line_opening_stdout_is_the_message() -> None:
    exc = failed("error: the stack is locked by another update\n", "")
    assert _first_line(exc) == "error: the stack is locked by another update"


def test_an_error_line_among_the_diagnostics_is_the_message() -> None:
    stdout = (
        "Updating (remediation)\n\nDiagnostics:\n  pulumi:pulumi:Stack (remediate-remediation):\n"
        "    error: update failed\n"
    )
    exc = failed(stdout, "error: the first error of stderr\n")
    assert _first_line(exc) == "error: update failed"


def test_without_an_error_line_the_first_line_is_the_message() -> None:
    assert _first_line(RuntimeError("\n  the CLI was killed\nsecond line\n")) == (
        "the CLI was killed"
    )
    assert _first_line(failed("", "")) == "code: 255"


def test_an_exception_without_text_is_named() -> None:
    assert _first_line(TimeoutError()) == "TimeoutError"
    assert _first_line(TimeoutError("  \n ")) == "TimeoutError"


def test_a_preview_summary_counts_each_operation() -> None:
    assert _summary({OpType.UPDATE: 2, OpType.CREATE: 1}) == "2 to update, 1 to create"
    assert _summary({"import": 3}) == "3 to import"


def test_a_preview_without_changes_says_so() -> None:
    assert _summary(None) == "no changes"
    assert _summary({}) == "no changes"
