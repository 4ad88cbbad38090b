"""The gcp-api executor: create or correct remediate's SSL policies, attach them, read back.

Writes use the `*_unary` methods and poll the returned Operation with our own operations client,
which honours the configured endpoint (the clients' `.result()` polling does not). Global target
HTTPS proxies and target SSL proxies take `setSslPolicy`; regional HTTPS proxies (v1 has no
regional setSslPolicy) a PATCH carrying the fingerprint they were read with. Detaching a regional
proxy's SSL policy needs `"sslPolicy": null` in that PATCH (an empty string or an omitted field
does not clear it), which the generated client cannot send: a proto3 field set to None is left
out of the JSON. That one PATCH goes through the clients' credentials as a plain HTTP request.
A stale fingerprint (412) means someone changed the resource: it is read again, re-planned, and
written once more if it still needs the change.

Every call retries transient failures (`Clients.options`), writes included, and each write stays
idempotent across a retry: setSslPolicy sets the same reference again, a PATCH whose first attempt
landed meets a stale fingerprint (412) and the resource is read back, an insert that landed meets
409 and is read back. A write that still fails is read back before it is called failed: when the
resource holds what was asked, its answer was lost and it is applied.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core.exceptions import (
    Conflict,
    NotFound,
    PreconditionFailed,
    from_http_response,
)
from google.cloud import compute_v1

from remediate.errors import RemediateError
from remediate.executors import NoSteps, Outcome, Settings, Status, Steps, confirmed
from remediate.model import Change, fingerprint
from remediate.policy import build
from remediate.progress import Progress
from remediate.providers.gcp.discover import (
    FAILURES,
    Clients,
    get_proxy,
    get_ssl_policy,
    owned_policy_settings,
    proxy_settings,
    read_settings,
    ssl_policy_facts,
)
from remediate.providers.gcp.model import ComputeTarget, Kind
from remediate.providers.gcp.rules import Link, proxy_verdict, same_resource
from remediate.targets import require

# How long to wait for one operation, and the pause between polls: from 0.1 s, growing by half
# each time up to 5 s (a write takes from under a second to a minute).
OPERATION_TIMEOUT = 600.0
POLL_INITIAL, POLL_MAXIMUM, POLL_MULTIPLIER = 0.1, 5.0, 1.5
# API field name -> the key discovery records it under.
POLICY_FIELDS = {
    "minTlsVersion": "min_tls_version",
    "profile": "profile",
    "postQuantumKeyExchange": "post_quantum_key_exchange",
}


class WriteError(RemediateError):
    """One resource could not be written; the message is what the user reads."""


class GcpExecutor:
    name = "gcp-api"

    def __init__(self, settings: Settings, progress: Progress) -> None:
        # Re-planning a proxy whose fingerprint went stale needs the policy in force; without
        # one, the section alone (endpoint, policy name) gives a policy at the default minimum.
        self._policy = settings.policy or build(gcp=settings.sections.get("gcp") or {})
        self._progress = progress
        self._clients: Clients | None = None

    def _open(self) -> Clients:
        if self._clients is None:
            self._clients = Clients.open(self._policy)
        return self._clients

    def _read(self, changes: Sequence[Change]) -> dict[str, Any]:
        kinds = {change.resource: change.kind for change in changes}
        return read_settings(self._open(), kinds)

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        return {
            resource: None if settings is None else fingerprint(settings)
            for resource, settings in self._read(changes).items()
        }

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        settings = self._read(changes)
        return {
            (change.resource, change.attribute): _observed(change, settings.get(change.resource))
            for change in changes
        }

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        if dry_run:
            return [Outcome(change, Status.DRY_RUN) for change in changes]
        steps = steps or NoSteps()
        clients = self._open()
        by_resource: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_resource[change.resource].append(change)
        order = sorted(by_resource, key=lambda resource: _stage(by_resource[resource]))
        failures: dict[str, str] = {}
        landed: dict[str, str] = {}
        for resource in order:
            group = by_resource[resource]
            first = group[0]
            blocked = [c.after for c in group if isinstance(c.after, str) and c.after in failures]
            if blocked:
                failures[resource] = f"not attached: SSL policy {blocked[0]} was not written"
                continue
            steps.begin(group)
            self._progress.update(f"gcp {first.location}", f"updating {first.name}")
            failure: str | None = None
            try:
                if first.kind == Kind.SSL_POLICY:
                    self._write_policy(clients, group)
                else:
                    for change in group:
                        self._attach(clients, change)
            except WriteError as exc:
                failure = str(exc)
            except FAILURES as exc:
                failure = clients.failure(exc)
            if failure is not None:
                # Read back now, not only at the end: a proxy waiting for this policy needs to
                # know whether it exists.
                if self._holds(group):
                    landed[resource] = f"the write answered {failure}, but it landed"
                else:
                    failures[resource] = failure
            steps.end(group, failures.get(resource))
            outcome = "failed" if resource in failures else "written"
            self._progress.done(f"gcp {first.location}", f"{first.name} {outcome}")
        written = [change for change in changes if change.resource not in failures]
        try:
            observed = self._read(written) if written else {}
        except RemediateError as exc:
            # Each written resource's operation finished without error: that is the evidence.
            return [
                confirmed(change, None, False, failures[change.resource])
                if change.resource in failures
                else Outcome(
                    change, Status.APPLIED, f"its operation finished; not read back ({exc})"
                )
                for change in changes
            ]
        outcomes: list[Outcome] = []
        for change in changes:
            if change.resource in failures:
                outcomes.append(confirmed(change, None, False, failures[change.resource]))
                continue
            value = _observed(change, observed.get(change.resource))
            result = confirmed(change, value, _matches(change.after, value))
            if result.status is Status.APPLIED and change.resource in landed:
                result = Outcome(change, Status.APPLIED, landed[change.resource], value)
            outcomes.append(result)
        return outcomes

    def _holds(self, group: Sequence[Change]) -> bool:
        """Whether every change of `group` reads back as asked (False when it cannot be read)."""
        try:
            settings = self._read(group)
        except RemediateError:
            return False
        return all(
            _matches(change.after, _observed(change, settings.get(change.resource)))
            for change in group
        )

    def _attach(self, clients: Clients, change: Change) -> None:
        """Point a proxy at `change.after` (None detaches: Google's default applies again); on a
        stale fingerprint re-read it, re-plan it and retry once."""
        link = Link.parse(change.resource)
        proxy_fingerprint = require(change.target, ComputeTarget).api_fingerprint
        target = change.after or ""  # setSslPolicy clears the reference on an empty string
        for attempt in (1, 2):
            try:
                if link.collection == "targetSslProxies":
                    operation = clients.ssl_proxies.set_ssl_policy_unary(
                        project=link.project,
                        target_ssl_proxy=link.name,
                        ssl_policy_reference_resource=compute_v1.SslPolicyReference(
                            ssl_policy=target
                        ),
                        **clients.options(),
                    )
                elif link.region and not change.after:
                    operation = _detach_regional(clients, link, proxy_fingerprint)
                elif link.region:
                    operation = clients.region_proxies.patch_unary(
                        project=link.project,
                        region=link.region,
                        target_https_proxy=link.name,
                        target_https_proxy_resource=compute_v1.TargetHttpsProxy(
                            ssl_policy=target, fingerprint=proxy_fingerprint
                        ),
                        **clients.options(),
                    )
                else:
                    operation = clients.proxies.set_ssl_policy_unary(
                        project=link.project,
                        target_https_proxy=link.name,
                        ssl_policy_reference_resource=compute_v1.SslPolicyReference(
                            ssl_policy=target
                        ),
                        **clients.options(),
                    )
                self._wait(clients, operation, link)
                return
            except PreconditionFailed:
                if attempt == 2:
                    raise WriteError(
                        "the proxy kept changing while it was being updated (stale fingerprint "
                        "twice); run `remediate plan` again"
                    ) from None
            fresh = get_proxy(clients, change.resource)
            if fresh is None:
                raise WriteError("the proxy was deleted since the plan")
            proxy_fingerprint = getattr(fresh, "fingerprint", None)
            if _matches(change.after, fresh.ssl_policy or None):
                return
            if _matches(change.before, fresh.ssl_policy or None):
                continue  # something else changed: what was planned from still holds
            attached = get_ssl_policy(clients, fresh.ssl_policy) if fresh.ssl_policy else None
            facts = {fresh.ssl_policy: ssl_policy_facts(attached)} if attached else {}
            verdict = proxy_verdict(change.resource, proxy_settings(fresh), facts, self._policy)
            if not any(desired.attribute == "ssl_policy" for desired in verdict.changes):
                raise WriteError(
                    f"changed since the plan (ssl_policy is now {fresh.ssl_policy or 'unset'}) "
                    "and no longer needs this change; run `remediate plan` again"
                )

    def _write_policy(self, clients: Clients, group: Sequence[Change]) -> None:
        """Create remediate's SSL policy, correct the fields that drifted, or (a rollback of its
        creation) delete it."""
        first = group[0]
        link = Link.parse(first.resource)
        create = next((c for c in group if c.attribute == "ssl_policy"), None)
        if create is not None and create.after is None:
            self._delete_policy(clients, link)
            return
        wanted: dict[str, Any] = (
            {k: v for k, v in create.after.items() if k in POLICY_FIELDS}
            if create is not None
            else {c.attribute: c.after for c in group if c.attribute in POLICY_FIELDS}
        )
        policy_fingerprint = require(first.target, ComputeTarget).api_fingerprint
        if create is not None:
            try:
                self._wait(clients, self._insert_policy(clients, link, wanted), link)
                return
            except Conflict:
                policy_fingerprint = None  # created by someone else since the plan: correct it
        for attempt in (1, 2):
            if policy_fingerprint is None or attempt == 2:
                fresh = get_ssl_policy(clients, first.resource)
                if fresh is None:
                    raise WriteError("the SSL policy was deleted since the plan")
                current = owned_policy_settings(fresh)
                if all(current[POLICY_FIELDS[k]] == v for k, v in wanted.items()):
                    return
                policy_fingerprint = fresh.fingerprint
            try:
                self._wait(
                    clients, self._patch_policy(clients, link, wanted, policy_fingerprint), link
                )
                return
            except PreconditionFailed:
                if attempt == 2:
                    raise WriteError(
                        "the SSL policy kept changing while it was being updated (stale "
                        "fingerprint twice); run `remediate plan` again"
                    ) from None

    def _delete_policy(self, clients: Clients, link: Link) -> None:
        """Delete remediate's SSL policy (a rollback of its creation); gone already is fine."""
        try:
            if link.region:
                operation = clients.region_ssl_policies.delete_unary(
                    project=link.project,
                    region=link.region,
                    ssl_policy=link.name,
                    **clients.options(),
                )
            else:
                operation = clients.ssl_policies.delete_unary(
                    project=link.project, ssl_policy=link.name, **clients.options()
                )
        except NotFound:
            return
        self._wait(clients, operation, link)

    @staticmethod
    def _insert_policy(
        clients: Clients, link: Link, wanted: Mapping[str, Any]
    ) -> compute_v1.Operation:
        resource = compute_v1.SslPolicy(
            name=link.name,
            min_tls_version=wanted["minTlsVersion"],
            profile=wanted["profile"],
            post_quantum_key_exchange=wanted.get("postQuantumKeyExchange"),
        )
        if link.region:
            return clients.region_ssl_policies.insert_unary(
                project=link.project,
                region=link.region,
                ssl_policy_resource=resource,
                **clients.options(),
            )
        return clients.ssl_policies.insert_unary(
            project=link.project, ssl_policy_resource=resource, **clients.options()
        )

    @staticmethod
    def _patch_policy(
        clients: Clients, link: Link, wanted: Mapping[str, Any], policy_fingerprint: str
    ) -> compute_v1.Operation:
        resource = compute_v1.SslPolicy(
            min_tls_version=wanted.get("minTlsVersion"),
            profile=wanted.get("profile"),
            post_quantum_key_exchange=wanted.get("postQuantumKeyExchange"),
            fingerprint=policy_fingerprint,
        )
        if link.region:
            return clients.region_ssl_policies.patch_unary(
                project=link.project,
                region=link.region,
                ssl_policy=link.name,
                ssl_policy_resource=resource,
                **clients.options(),
            )
        return clients.ssl_policies.patch_unary(
            project=link.project,
            ssl_policy=link.name,
            ssl_policy_resource=resource,
            **clients.options(),
        )

    @staticmethod
    def _wait(clients: Clients, operation: compute_v1.Operation, link: Link) -> None:
        """Poll `operation` with the operations client of its scope; raise if it failed.

        `get` answers at once, so each poll is bounded like any call (`wait` may hold the
        connection for two minutes, longer than a read timeout should be)."""
        deadline = time.monotonic() + OPERATION_TIMEOUT
        pause = POLL_INITIAL
        while operation.status != compute_v1.Operation.Status.DONE:
            if time.monotonic() > deadline:
                raise WriteError(
                    f"operation {operation.name} did not finish within {OPERATION_TIMEOUT:.0f} s"
                )
            if link.region:
                operation = clients.region_operations.get(
                    project=link.project,
                    region=link.region,
                    operation=operation.name,
                    **clients.options(),
                )
            else:
                operation = clients.global_operations.get(
                    project=link.project, operation=operation.name, **clients.options()
                )
            if operation.status != compute_v1.Operation.Status.DONE:
                time.sleep(pause)
                pause = min(pause * POLL_MULTIPLIER, POLL_MAXIMUM)
        errors = operation.error.errors if "error" in operation else []
        if errors or operation.http_error_status_code:
            details = "; ".join(f"{e.code}: {e.message}" for e in errors)
            raise WriteError(
                f"operation {operation.name} failed: "
                f"{details or operation.http_error_message or operation.http_error_status_code}"
            )


def _detach_regional(
    clients: Clients, link: Link, proxy_fingerprint: str | None
) -> compute_v1.Operation:
    """PATCH a regional target HTTPS proxy with `"sslPolicy": null`, which the API reads as
    "clear the reference" (the proto3 JSON mapping's null); raises the client's exceptions."""
    base = clients.endpoint if "://" in clients.endpoint else f"https://{clients.endpoint}"
    url = (
        f"{base.rstrip('/')}/compute/v1/projects/{link.project}/regions/{link.region}"
        f"/targetHttpsProxies/{link.name}"
    )
    timeouts = clients.timeouts

    def patch() -> Any:
        response = clients.http.patch(
            url,
            json={"fingerprint": proxy_fingerprint, "sslPolicy": None},
            timeout=(timeouts.connect, timeouts.read),
        )
        if response.status_code >= 400:
            raise from_http_response(response)  # type: ignore[no-untyped-call]
        return response

    # The same retry policy as every client call: transient failures are retried, and a retry
    # of a PATCH that landed meets a stale fingerprint (412) and is read back.
    response = clients.options()["retry"](patch)()
    operation: compute_v1.Operation = compute_v1.Operation.from_json(
        response.text, ignore_unknown_fields=True
    )
    return operation


def _stage(group: Sequence[Change]) -> int:
    """Write order: remediate's SSL policies before the proxies that use them, and deleting one
    (a rollback of its creation) only after its proxies were detached."""
    if group[0].kind != Kind.SSL_POLICY:
        return 1
    return 2 if any(c.attribute == "ssl_policy" and c.after is None for c in group) else 0


def _observed(change: Change, settings: Mapping[str, Any] | None) -> Any:
    """The read-back value of `change.attribute`, in the shape of `change.after`."""
    if settings is None:
        return None
    if change.kind in (Kind.TARGET_HTTPS_PROXY, Kind.TARGET_SSL_PROXY):
        return settings.get("ssl_policy")
    if not settings.get("exists"):
        return None
    if change.attribute == "ssl_policy":
        wanted = change.after if isinstance(change.after, Mapping) else POLICY_FIELDS
        return {
            "name": Link.parse(change.resource).name,
            **{api: settings[key] for api, key in POLICY_FIELDS.items() if api in wanted},
        }
    return settings.get(POLICY_FIELDS.get(change.attribute, change.attribute))


def _matches(after: Any, value: Any) -> bool:
    if isinstance(after, str) and isinstance(value, str):
        return same_resource(after, value)
    return bool(after == value)
