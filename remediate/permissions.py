"""What a read-only plan, or an apply, needs from each provider, as documents to paste.

Built from the permissions each provider declares (`Provider.permissions`): an IAM policy
document for AWS, a custom role definition (`gcloud iam roles create --file`) for GCP, and plain
requirements for host-based providers.
"""

from __future__ import annotations

import json
from io import StringIO

from ruamel.yaml import YAML

from remediate.provider import Permissions, Provider


def needed(permissions: Permissions, write: bool) -> list[str]:
    """The permissions of a plan (read) or of an apply (read, since apply re-reads, and write)."""
    return sorted({*permissions.read, *(permissions.write if write else ())})


def document(provider: Provider, write: bool = False) -> str:
    """The provider's permissions in the form its permission system takes."""
    permissions = provider.permissions
    wanted = needed(permissions, write)
    purpose = "plan and apply" if write else "plan (read-only)"
    if permissions.system == "aws-iam":
        statement = {
            "Sid": "RemediateApply" if write else "RemediatePlan",
            "Effect": "Allow",
            "Action": wanted,
            "Resource": "*",
        }
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2) + "\n"
    if permissions.system == "gcp-iam":
        role = {
            "title": f"remediate {purpose}",
            "description": f"What remediate needs to {purpose} GCP load balancers.",
            "stage": "GA",
            "includedPermissions": wanted,
        }
        yaml = YAML()
        yaml.default_flow_style = False
        text = StringIO()
        yaml.dump(role, text)
        return text.getvalue()
    lines = [f"# {provider.title}: what remediate needs to {purpose}"]
    lines += [f"- {item}" for item in permissions.read]
    if write:
        lines += [f"- {item}" for item in permissions.write]
    return "\n".join(lines) + "\n"
