from tests.conftest import Cli


def test_demo_plans_applies_and_comes_back_clean(cli: Cli) -> None:
    result = cli("demo", "--quiet")
    assert result.code == 0, result.stderr
    first, _, after = result.stdout.partition("== 3. remediate plan, again")
    assert "ELBSecurityPolicy-2016-08" in first
    assert "+    listen 127.0.0.1:" in first  # the Nginx host's diff: http2 on its listen
    # Debian's layout: the site is enabled by a symlink, and the plan names both paths.
    assert "/conf/sites-enabled/shop (symlink to " in first
    assert "/conf/sites-available/shop)" in first
    assert "gcp ssl-policy remediate-tls (demo-shop/europe-west1)" in first
    assert "Plan: 12 changes to 11 resources" in first  # AWS 5 to 4, GCP 5 to 5, Nginx 2 files
    assert "No changes." in after
