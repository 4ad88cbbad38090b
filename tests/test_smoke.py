from tests.conftest import Cli


def test_demo_plans_applies_and_comes_back_clean(cli: Cli) -> None:
    result = cli("demo", "--quiet")
    assert result.code == 0, result.stderr
    first, _, after = result.stdout.partition("== 3. remediate plan, again")
    assert "ELBSecurityPolicy-2016-08" in first
    assert "Plan: 5 changes to 4 resources" in first
    assert "No changes." in after
