from tests.conftest import Cli


def test_demo_plans_applies_and_comes_back_clean(cli: Cli) -> None:
    result = cli("demo", "--quiet")
    assert result.code == 0, result.stderr
    first, _, after = result.stdout.partition("== 3. remediate plan, again")
    assert "ELBSecurityPolicy-2016-08" in first
    assert "gcp ssl-policy remediate-tls (demo-shop/europe-west1)" in first
    assert "Plan: 10 changes to 9 resources" in first  # AWS 5 changes to 4, GCP 5 to 5
    assert "No changes." in after
