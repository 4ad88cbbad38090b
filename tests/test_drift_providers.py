"""Drift and rollback on GCP (the local Compute server) and Nginx (the real binary, changed
through Ansible): out-of-band drift detected and fixed, recurring, and what rollback does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tests.test_gcp as gcp_tests
import tests.test_nginx_apply as nginx_tests
from remediate.sandbox.compute import ComputeServer, link
from remediate.verify import tls_accepted
from tests.conftest import Cli
from tests.nginx_env import wait_until

compute_server = gcp_tests.compute_server
compute = gcp_tests.compute
policy_file = gcp_tests.policy_file
backend = nginx_tests.backend
hosts = nginx_tests.hosts


def _report(result: Any) -> dict[str, Any]:
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def test_gcp_drift_is_fixed_and_rollback_refuses_a_moved_proxy(
    compute: ComputeServer, cli: Cli, policy_file: Path
) -> None:
    estate = gcp_tests.seed_estate(compute)
    args = ("drift", "-p", str(policy_file), "--only", "gcp", "-q", "--format", "json")
    fixed = _report(cli(*args, "--fix"))
    assert fixed["status"] == "fixed", fixed
    remediate_tls = link(gcp_tests.SHOP, "sslPolicies", "remediate-tls")
    assert compute.get(estate.web)["sslPolicy"] == remediate_tls
    assert _report(cli(*args))["status"] == "clean"

    # Someone points the proxy back at the weak shared policy in the console.
    compute.test_hooks.touch(estate.web, sslPolicy=estate.legacy_policy)
    check = cli(*args)
    assert check.code == 2
    (change,) = _report(check)["changes"]
    assert change["resource"] == estate.web
    assert change["recurring"]["runs"] == [fixed["run_id"]]

    before = {item: compute.get(item) for item in compute.links()}
    refused = cli("rollback", fixed["run_id"], "-p", str(policy_file), "--auto-approve")
    assert refused.code == 1
    # The gcp-api executor reads current values: rollback names the proxy that moved.
    assert refused.stderr.strip() == (
        f"error: rollback of run {fixed['run_id']} refused: 1 resource(s) changed since that run "
        f"({estate.web} ssl_policy is now '{estate.legacy_policy}', not '{remediate_tls}'); "
        "nothing was changed"
    )
    assert {item: compute.get(item) for item in compute.links()} == before


@pytest.mark.skipif(
    not Path(nginx_tests.NGINX).exists(), reason="needs the nginx binary (Debian package nginx)"
)
def test_nginx_drift_is_fixed_and_rollback_checks_the_files_first(
    tmp_path: Path, hosts: nginx_tests.HostFactory, cli: Cli
) -> None:
    web = hosts("web1")
    policy = nginx_tests.write_setup(tmp_path, web)
    original = {path: state.data for path, state in web.files().items()}
    fixed = _report(cli("drift", "-p", str(policy), "-q", "--fix", "--format", "json"))
    assert fixed["status"] == "fixed", fixed
    nginx_tests.assert_fixed(web)
    fixed_conf = web.conf.read_text(encoding="utf-8")
    fixed_site = web.site.read_bytes()

    # A configuration-management run elsewhere puts the old protocols back.
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in fixed_conf
    edited = fixed_conf.replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1 TLSv1.2;")
    web.conf.write_text(edited, encoding="utf-8")
    check = cli("drift", "-p", str(policy), "-q", "--format", "json")
    assert check.code == 2
    (change,) = _report(check)["changes"]
    assert change["resource"] == f"web1:{web.conf}"
    assert change["recurring"]["count"] == 1

    refused = cli("rollback", fixed["run_id"], "-p", str(policy), "-q", "--auto-approve")
    assert refused.code == 1
    assert f"web1:{web.conf} content was edited since" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert web.conf.read_text(encoding="utf-8") == edited
    assert web.site.read_bytes() == fixed_site

    # Once the file is back as the run left it, the rollback goes through: every file of the
    # host is restored byte for byte, and the live server accepts TLS 1.0 again.
    web.conf.write_text(fixed_conf, encoding="utf-8")
    result = cli("rollback", fixed["run_id"], "-p", str(policy), "-q", "--auto-approve")
    assert result.code == 0, result.stdout + result.stderr
    assert {path: state.data for path, state in web.files().items()} == original
    probe = nginx_tests.target(web)
    wait_until(lambda: tls_accepted(probe, "1.0") is True, what="TLS 1.0 to be accepted again")
