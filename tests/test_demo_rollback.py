"""`remediate demo --rollback`: the cloud worlds (every AWS and GCP kind, the new ones included)
weak, fixed, clean on the second plan, rolled back, and weak again on the last plan; the member
accounts of the sandbox AWS organization included (3 changes), the one refusing the role reported,
and the projects of the sandbox GCP organization (8 changes), the one without Compute reported.

The host worlds (Nginx, HAProxy) are left out to keep the run short: their rollback is covered by
their own suites; `tests/test_smoke.py` runs the whole demo without the rollback.
"""

from __future__ import annotations

import pytest

from remediate.sandbox import demo


def test_the_cloud_worlds_are_fixed_then_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "WORLDS", [demo.aws_world, demo.gcp_world])
    out: list[str] = []
    notes: list[str] = []
    demo.run(quiet=True, state_dir=None, write=out.append, note=notes.append, rollback=True)
    text = "".join(out)
    # The only note: the units not read (the AWS member that refuses the role, the GCP project
    # without the Compute API), as intended.
    assert len(notes) == 1 and "units not read, as intended" in notes[0], notes
    first, _, rest = text.partition("== 2. remediate apply")
    applied, _, rest = rest.partition("== 3. remediate plan, again")
    second, _, rest = rest.partition("== 4. remediate rollback")
    undone, _, last = rest.partition("== 5. remediate plan, after the rollback")
    for kind in (
        "aws classic-listener shop-classic:443 HTTPS (Classic)",
        "aws http-api-domain ws.shop.example.com",
        "aws rest-api-domain shop.example.com (REST custom domain)",
        "aws rest-api-domain edge.shop.example.com (REST custom domain)",
        "aws rest-api orders",
        "gcp target-ssl-proxy mqtt (demo-shop/global)",
        "gcp target-https-proxy web (web-prod/global)",
    ):
        assert kind in first, kind
        assert kind in last, kind
    assert "Plan: 28 changes to 27 resources" in first
    assert "Apply: 28 applied, 0 failed" in applied
    assert "No changes." in second
    assert "Apply: 28 applied, 0 failed" in undone
    assert "Plan: 28 changes to 27 resources" in last
