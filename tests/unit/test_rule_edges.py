"""Rule decisions at their edges: settings discovery leaves out, the newest revision within one
year, weak and strong configurations side by side, the rule a declared GCP policy's change
carries, and an Nginx location that drops the Upgrade header."""

from __future__ import annotations

import pytest

from remediate.policy import Policy
from remediate.policy import model as policy_model
from remediate.providers.aws.rules import (
    API_SECURITY_POLICIES,
    CLASSIC_NEGOTIATION,
    ClassicPolicy,
    classic_listener_verdict,
    http_api_domain_verdict,
)
from remediate.providers.gcp.rules import TLS_FLOOR, declared_policy_verdict
from remediate.providers.nginx import rules as nginx_rules
from remediate.providers.nginx.config import parse_tree
from remediate.rules import Verdict

pytestmark = pytest.mark.unit

DEFAULT = ClassicPolicy("ELBSecurityPolicy-2016-08", ("1.0", "1.1", "1.2"))


def policy(**overrides: object) -> Policy:
    return policy_model().model_validate({"aws": {}, "gcp": {}, "nginx": {}, **overrides})


def test_the_newest_month_of_the_same_year_wins_among_classic_policies() -> None:
    older = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-Ext-2018-01", ("1.2",))
    newer = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", ("1.2",))
    for catalog in ([DEFAULT, older, newer], [DEFAULT, newer, older]):
        [change] = classic_listener_verdict({}, catalog, policy()).changes
        assert change.after == "remediate-ELBSecurityPolicy-TLS-1-2-Ext-2018-06"


def test_a_custom_classic_policy_with_only_sslv3_recorded_is_still_judged() -> None:
    settings = {CLASSIC_NEGOTIATION: "legacy", "policy_sslv3": True}
    tls12 = ClassicPolicy("ELBSecurityPolicy-TLS-1-2-2017-01", ("1.2",))
    [change] = classic_listener_verdict(settings, [DEFAULT, tls12], policy()).changes
    assert change.reason.startswith("accepts SSLv3 (custom policy legacy)")
    assert change.after == "remediate-ELBSecurityPolicy-TLS-1-2-2017-01"


def test_a_domain_without_recorded_security_policies_is_left_alone() -> None:
    assert http_api_domain_verdict({}, ["TLS_1_0", "TLS_1_2"], policy()) == Verdict()


def test_only_the_weak_configurations_of_a_domain_change() -> None:
    settings = {API_SECURITY_POLICIES: ["TLS_1_0", "TLS_1_3"]}
    [change] = http_api_domain_verdict(
        settings, ["TLS_1_0", "TLS_1_2", "TLS_1_3"], policy()
    ).changes
    assert (change.before, change.after) == (["TLS_1_0", "TLS_1_3"], ["TLS_1_2", "TLS_1_3"])


def test_a_declared_gcp_policys_changes_carry_the_tls_floor_rule() -> None:
    verdict = declared_policy_verdict({"min_tls_version": "TLS_1_0"}, policy())
    assert [(c.attribute, c.rules) for c in verdict.changes] == [
        ("minTlsVersion", (TLS_FLOOR,)),
        ("profile", (TLS_FLOOR,)),
    ]


SITE = """\
http {
    server {
        listen 443 ssl;
        server_name a.example;
        location /ws/ { proxy_pass http://b; proxy_pass_request_headers off; }
        location /live/ { proxy_pass http://b; proxy_pass_request_headers on; }
        location /api/ { proxy_pass http://b; }
    }
}
"""


def test_a_location_that_drops_request_headers_cannot_carry_an_upgrade() -> None:
    config = parse_tree({"/etc/nginx/nginx.conf": SITE}, "/etc/nginx/nginx.conf")
    by_uri = {loc.uri: loc for server in config.servers for loc in server.locations}
    assert nginx_rules.upgrade_blocker(by_uri["/ws/"]) == (
        "proxy_pass_request_headers off drops the client's Upgrade header"
    )
    assert nginx_rules.upgrade_blocker(by_uri["/live/"]) is None
    assert nginx_rules.upgrade_blocker(by_uri["/api/"]) is None
    star = nginx_rules.websocket_locations(config, ["*"])
    assert [loc.uri for loc in star] == ["/live/", "/api/"]
