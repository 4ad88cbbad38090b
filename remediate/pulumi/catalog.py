"""ELB security policies for Pulumi programs, which run before any listener exists.

The rules pick policies by the protocols `describe_ssl_policies` reports, never by name. A program
that cannot call the API (a preview without credentials, a unit test under mocks) uses the bundled
catalog in that same response's shape, `data/elb-ssl-policies.json`, built from AWS's published
policy tables by `scripts/elb-catalog-from-docs` (its `provenance` and per-policy `sources` say
from where); `fetch()` reads the live API instead, and the planner always does. A snapshot of a
live API (AWS itself, or an emulator through `AWS_ENDPOINT_URL`) is printed by
`python -m remediate.pulumi.catalog [REGION]`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from remediate.errors import RemediateError
from remediate.providers.aws.rules import ClassicPolicy, SslPolicy, tls_version

BUNDLED = "elb-ssl-policies.json"
CLASSIC = "classic-elb-policies.json"


def _parse(document: dict[str, Any], source: str) -> list[SslPolicy]:
    try:
        return [SslPolicy.from_api(raw) for raw in document["SslPolicies"]]
    except (KeyError, TypeError) as exc:
        raise RemediateError(f"{source}: not a describe_ssl_policies response ({exc})") from None


def bundled() -> list[SslPolicy]:
    """The snapshot shipped with remediate (see `provenance` in the file)."""
    text = resources.files("remediate.pulumi").joinpath("data", BUNDLED).read_text("utf-8")
    return _parse(json.loads(text), BUNDLED)


def classic_bundled() -> list[ClassicPolicy]:
    """The Classic ELB predefined policies' protocols, from AWS's published table (see the
    file's `source`): what a program's `aws.elb.LoadBalancerPolicy` references are judged by."""
    text = resources.files("remediate.pulumi").joinpath("data", CLASSIC).read_text("utf-8")
    return [
        ClassicPolicy(
            name,
            tuple(tls_version(p) for p in protocols if p.startswith("Protocol-TLS")),
            "Protocol-SSLv3" in protocols,
        )
        for name, protocols in json.loads(text)["policies"].items()
    ]


def describe(region: str | None = None) -> list[dict[str, Any]]:
    """Every security policy `describe_ssl_policies` returns in `region`, as the API shapes it."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("elbv2", region_name=region)
    raw: list[dict[str, Any]] = []
    marker: str | None = None
    try:
        while True:
            page = (
                client.describe_ssl_policies(Marker=marker)
                if marker
                else client.describe_ssl_policies()
            )
            raw.extend(dict(item) for item in page["SslPolicies"])
            marker = page.get("NextMarker")
            if not marker:
                return raw
    except (BotoCoreError, ClientError) as exc:
        raise RemediateError(f"describe_ssl_policies failed: {exc}") from None


def fetch(region: str | None = None) -> list[SslPolicy]:
    """The live catalog, for programs that have AWS credentials at preview time."""
    return [SslPolicy.from_api(raw) for raw in describe(region)]


def main(argv: list[str]) -> None:
    """Print a fresh snapshot (to redirect into data/elb-ssl-policies.json)."""
    import boto3

    region = argv[0] if argv else None
    endpoint = boto3.client("elbv2", region_name=region).meta.endpoint_url
    document = {
        "provenance": (
            f"describe_ssl_policies from {endpoint} on {datetime.now(UTC).date()}, "
            "written by `python -m remediate.pulumi.catalog`"
        ),
        "SslPolicies": describe(region),
    }
    sys.stdout.write(json.dumps(document, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
