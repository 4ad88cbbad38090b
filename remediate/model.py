"""Provider-neutral model: what was observed (Endpoint), what to do (Change), what needs a person
(Finding), and the Plan that carries them, with its stable JSON form."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    computed_field,
    field_validator,
)

from remediate.errors import RemediateError
from remediate.inputs import decode_text, read_bytes
from remediate.provider import Severity
from remediate.targets import Target
from remediate.units import FailedUnit

FORMAT_VERSION = 2
# Probe and log reports (verify, diagnose, clients) kept their shape when plans went to format 2.
REPORT_FORMAT_VERSION = 1
# A saved plan carries the whole text of every Nginx file it changes, so it can be large; the limit
# only keeps a wrong file from being read into memory.
MAX_PLAN_BYTES = 256 * 1024 * 1024


def fingerprint(state: Any) -> str:
    """Digest of observed state; a change carries it so apply can tell when the world moved."""
    canonical = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Endpoint(BaseModel):
    """One observed resource: its identity, the settings remediate cares about, and context.

    `settings` is what the rules may change and what the fingerprint covers; `context` holds facts
    that inform the provider's own rules (load balancer type, nginx version...) without being
    changed by them. It stays inside the provider: what leaves it travels as a change's typed
    `target`.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    resource: str
    kind: str
    name: str
    location: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.settings)


class LosingAccess(BaseModel):
    """Clients seen in access logs that a TLS change would lock out."""

    model_config = ConfigDict(frozen=True)

    source: str
    requests: int
    of_requests: int
    clients: list[dict[str, Any]]


class Change(BaseModel):
    """Set one attribute of one resource from `before` to `after`."""

    model_config = ConfigDict(frozen=True)

    provider: str
    kind: str
    resource: str
    attribute: str
    before: Any
    after: Any
    reason: str
    executor: str
    fingerprint: str
    target: SerializeAsAny[Target]
    rules: tuple[str, ...] = ()
    name: str = ""
    location: str = ""
    diff: dict[str, str] | None = None
    clients_losing_access: LosingAccess | None = None

    @field_validator("target", mode="before")
    @classmethod
    def _registered_target(cls, value: Any) -> Target:
        return Target.parse(value)


class Finding(BaseModel):
    """Something that needs a person: a risk the policy must not fix silently."""

    model_config = ConfigDict(frozen=True)

    provider: str
    resource: str
    message: str
    rule: str = ""
    name: str = ""
    location: str = ""
    severity: Severity = Severity.MEDIUM


class Excluded(BaseModel):
    """A resource left alone by an exclusion (or that would be, had it not expired)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    resource: str
    match: str
    reason: str
    until: date | None = None
    expired: bool = False
    changes: int = 0


class Plan(BaseModel):
    """Everything a run would do; the JSON form is a stable, versioned contract."""

    format_version: int = FORMAT_VERSION
    run_id: str = Field(default="", description="The journal run that recorded this plan.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    policy_digest: str = ""
    providers: list[str] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    excluded: list[Excluded] = Field(default_factory=list)
    failed_units: list[FailedUnit] = Field(
        default_factory=list,
        description="Units (an account in a region, a project) that could not be read: the plan "
        "covers everything else.",
    )
    digest: str = Field(
        default="",
        description="sha256 of the plan's content: tells an edited plan from a damaged one.",
    )
    # The file this plan was loaded from: apply checks a saved plan against the policy in force.
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    def content_digest(self) -> str:
        """sha256 of everything the plan says (its digest and derived summary aside)."""
        # A plan without failed units digests as plans did before units existed.
        excluded = {"digest", "summary"} | (set() if self.failed_units else {"failed_units"})
        content = self.model_dump(mode="json", exclude=excluded)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> dict[str, Any]:
        by_provider: dict[str, int] = {}
        for change in self.changes:
            by_provider[change.provider] = by_provider.get(change.provider, 0) + 1
        summary: dict[str, Any] = {
            "changes": len(self.changes),
            "resources": len({change.resource for change in self.changes}),
            "findings": len(self.findings),
            "excluded": sum(1 for item in self.excluded if not item.expired),
            "expired_exclusions": sum(1 for item in self.excluded if item.expired),
            "changes_by_provider": by_provider,
        }
        if self.failed_units:
            summary["failed_units"] = len(self.failed_units)
        return summary

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def save(self, path: Path) -> None:
        sealed = self.model_copy(update={"digest": self.content_digest()})
        path.write_text(sealed.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        text = decode_text(read_bytes(path, "plan file", MAX_PLAN_BYTES), str(path), "a plan")
        try:
            raw = json.loads(text)
        except RecursionError:
            raise RemediateError(
                f"{path}: not a valid plan (damaged or not JSON): nested too deeply"
            ) from None
        except ValueError as exc:
            raise RemediateError(f"{path}: not a valid plan (damaged or not JSON): {exc}") from None
        if not isinstance(raw, dict) or raw.get("format_version") not in (1, FORMAT_VERSION):
            raise RemediateError(
                f"{path}: not a remediate plan (format_version 1 or {FORMAT_VERSION})"
            )
        # Format-1 plans predate the digest; a format-2 plan must carry one.
        sealed = raw["format_version"] == FORMAT_VERSION
        raw.pop("summary", None)
        if raw["format_version"] == 1:
            try:
                raw = migrate_v1(raw)
            except (ValueError, RemediateError) as exc:
                raise RemediateError(f"{path}: cannot read this format-1 plan: {exc}") from None
        try:
            plan = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RemediateError(
                f"{path}: not a valid plan: {where}: {first['msg']}"
                + (" (it was edited since it was saved)" if raw.get("digest") else "")
            ) from None
        if sealed and not plan.digest:
            raise RemediateError(
                f"{path}: not a valid plan: it carries no digest (save plans with `plan --out`)"
            )
        if plan.digest and plan.digest != plan.content_digest():
            raise RemediateError(
                f"{path}: the plan was edited since it was saved (its digest does not match its "
                "content); nothing was applied: make a new plan with `plan --out`"
            )
        plan._source = path
        return plan


def migrate_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-1 plan as format 2: each change's `context` dictionary becomes its `kind` and the
    typed `target` its provider builds from it."""
    from remediate import registry

    changes = []
    for change in raw.get("changes") or []:
        if not isinstance(change, dict):
            raise ValueError("a change must be a mapping")
        context = dict(change.pop("context", None) or {})
        provider = registry.get(str(change.get("provider")))
        kind = str(context.get("kind") or "")
        change["target"] = provider.migrate_v1(kind, {**change, "context": context})
        change["kind"] = "file" if "path" in context else kind
        losing = context.get("clients_losing_access")
        if isinstance(losing, dict):
            change["clients_losing_access"] = losing
        changes.append(change)
    findings = [
        {key: value for key, value in finding.items() if key != "severity"}
        for finding in raw.get("findings") or []
        if isinstance(finding, dict)
    ]
    return {**raw, "format_version": FORMAT_VERSION, "changes": changes, "findings": findings}
