"""What the local Google API stand-ins share: the discovery documents google-api-python-client
ships, request and response bodies checked against their schemas, and Google's error shape."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


class ApiError(Exception):
    """An HTTP error in Google's JSON error shape: `errors` (the older APIs' list, with its
    `domain` and `reason`) and, when given, the canonical `status` and typed `details`."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        canonical: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.domain = domain
        self.canonical = canonical
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
        }
        if self.canonical is not None:
            error["status"] = self.canonical
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def service_disabled(service: str, title: str, project_number: str) -> ApiError:
    """What a Google API answers a call in a project where it is not enabled: 403
    `accessNotConfigured`, PERMISSION_DENIED, with an ErrorInfo of reason SERVICE_DISABLED."""
    message = (
        f"{title} has not been used in project {project_number} before or it is disabled. "
        f"Enable it by visiting https://console.developers.google.com/apis/api/{service}/"
        f"overview?project={project_number} then retry. If you enabled this API recently, wait "
        "a few minutes for the action to propagate to our systems and retry."
    )
    return ApiError(
        403,
        message,
        "accessNotConfigured",
        domain="usageLimits",
        canonical="PERMISSION_DENIED",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {"service": service, "consumer": f"projects/{project_number}"},
            }
        ],
    )


COMPUTE = "compute.v1"


@cache
def discovery(name: str = COMPUTE) -> dict[str, Any]:
    """A discovery document shipped with google-api-python-client (`compute.v1` by default)."""
    path = resources.files("googleapiclient") / f"discovery_cache/documents/{name}.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _json_schema(node: Any) -> Any:
    """A discovery schema as JSON Schema: named $refs, closed objects, proto JSON number forms."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        result["type"] = "object"
        result["properties"] = {k: _json_schema(v) for k, v in node.get("properties", {}).items()}
        extra = node.get("additionalProperties")
        result["additionalProperties"] = _json_schema(extra) if extra else False
    elif kind == "array":
        result["type"] = "array"
        result["items"] = _json_schema(node.get("items", {}))
    elif kind == "integer":
        result["type"] = "integer"
    elif kind == "number":
        result["type"] = "number"
    elif kind == "boolean":
        result["type"] = "boolean"
    elif kind == "string":
        result["type"] = "string"
        if "enum" in node:
            result["enum"] = node["enum"]
    return result


@cache
def _validator(schema_name: str, document: str) -> jsonschema.protocols.Validator:
    schemas = discovery(document)["schemas"]
    root = {
        "$ref": f"#/$defs/{schema_name}",
        "$defs": {name: _json_schema(schema) for name, schema in schemas.items()},
    }
    validator_class = jsonschema.validators.validator_for(
        root, default=jsonschema.Draft202012Validator
    )
    return validator_class(root)


def validate(schema_name: str, body: Any, document: str = COMPUTE) -> None:
    """Reject `body` as the real API does when it does not fit `schema_name` of the discovery
    document `document` (400)."""
    error = jsonschema.exceptions.best_match(_validator(schema_name, document).iter_errors(body))
    if error is None:
        return
    where = ".".join(str(part) for part in error.absolute_path) or schema_name
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        raise ApiError(
            400,
            f"Invalid JSON payload received. Unknown name {unknown[0]!r} at '{where}': "
            "Cannot find field.",
            "invalid",
        )
    raise ApiError(
        400,
        f"Invalid value at '{where}' ({error.validator} {error.validator_value!r}): "
        f"{json.dumps(error.instance)}",
        "invalid",
    )
