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
    assert "aws classic-listener shop-classic:443 HTTPS (Classic)" in first
    assert "gcp target-ssl-proxy mqtt (demo-shop/global)" in first
    assert "aws http-api-domain ws.shop.example.com (HTTP/WebSocket API domain)" in first
    assert "aws rest-api-domain shop.example.com (REST custom domain)" in first
    assert "alpn h2,http/1.1" in first  # the HAProxy host's diff: h2 on its TLS bind
    # AWS 11 changes to 10 resources in the management account (2 Classic, 1 HTTP API domain,
    # 2 REST domains, 1 REST API) and 1 in each of 3 member accounts, GCP 6 to 6 (1 SSL proxy)
    # in the project named by id and 2 to 2 in each of the 4 organization's projects that have
    # the Compute API, Nginx 2, HAProxy 1 file
    assert "Plan: 31 changes to 30 resources" in first
    assert "aws listener payments-web:443 HTTPS (us-east-1)" in first
    # The member whose role does not trust the management account (in 2 regions) and the GCP
    # project without the Compute API are reported, not fatal.
    assert "Not read (3 units failed" in first
    assert "x gcp batch-jobs: 403 compute.googleapis.com is not enabled" in first
    assert "AccessDenied" in first
    assert "No changes." in after
    # The HAProxy host's WebSocket outlives its 5 s client timeout once timeout tunnel is in.
    assert "WebSocket /ws/ stays open idle: ok (open after 6 s idle)" in first
