"""The boto3 executor: modify_listener and modify_load_balancer_attributes (ELBv2), Classic
negotiation policies (`classic.write`), then read back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediate.executors import NoSteps, Outcome, Status, Steps, confirmed
from remediate.model import Change, fingerprint
from remediate.progress import Progress
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws import apigateway, classic
from remediate.providers.aws.discover import (
    Session,
    read_api_domains,
    read_classic,
    read_settings,
)
from remediate.providers.aws.model import ApiDomainTarget, ClassicListenerTarget, Kind
from remediate.providers.aws.rules import HTTP2_ATTRIBUTE


class Boto3Executor:
    name = "boto3"

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._session: Session | None = None

    def _open(self, changes: Sequence[Change]) -> Session:
        if self._session is None:
            self._session = Session.open(sorted({change.location for change in changes}))
        return self._session

    def _read(self, changes: Sequence[Change]) -> dict[str, dict[str, Any] | None]:
        session = self._open(changes)
        targets = {(c.resource, c.kind, c.location) for c in changes if c.kind in _V2_KINDS}
        found = read_settings(session, sorted(targets))
        listeners = {
            change.resource: change.target
            for change in changes
            if isinstance(change.target, ClassicListenerTarget)
        }
        found.update(read_classic(session, listeners))
        domains = {
            change.resource: change.target
            for change in changes
            if isinstance(change.target, ApiDomainTarget)
        }
        found.update(read_api_domains(session, domains))
        return found

    def fingerprints(self, changes: Sequence[Change]) -> dict[str, str | None]:
        return {
            resource: None if settings is None else fingerprint(settings)
            for resource, settings in self._read(changes).items()
        }

    def current(self, changes: Sequence[Change]) -> dict[tuple[str, str], object]:
        settings = self._read(changes)
        return {
            (change.resource, change.attribute): _value_of(
                settings.get(change.resource), change.attribute
            )
            for change in changes
        }

    def apply(
        self, changes: Sequence[Change], dry_run: bool = False, steps: Steps | None = None
    ) -> list[Outcome]:
        if dry_run:
            return [Outcome(change, Status.DRY_RUN) for change in changes]
        steps = steps or NoSteps()
        session = self._open(changes)
        by_resource: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_resource[change.resource].append(change)
        failures: dict[str, str] = {}
        for resource, group in by_resource.items():
            first = group[0]
            steps.begin(group)
            self._progress.update(f"aws {first.location}", f"updating {first.name}")
            try:
                _write(session, group)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                failures[resource] = f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
            except (BotoCoreError, UnsupportedChangeError) as exc:
                failures[resource] = str(exc)
            steps.end(group, failures.get(resource))
        # Failed writes are read back too: a write whose answer was lost may have landed.
        try:
            observed = self._read(changes)
        except (ClientError, BotoCoreError) as exc:
            unread = f"written, but could not be read back: {exc}"
            return [Outcome(c, Status.FAILED, failures.get(c.resource, unread)) for c in changes]
        outcomes: list[Outcome] = []
        for change in changes:
            value = _value_of(observed.get(change.resource), change.attribute)
            failure = failures.get(change.resource)
            outcomes.append(confirmed(change, value, value == change.after, failure))
        return outcomes


def _modify_listener(client: Any, group: Sequence[Change]) -> None:
    """modify_listener changes only the fields it is given."""
    fields: dict[str, Any] = {}
    for change in group:
        if change.attribute == "ssl_policy":
            fields["SslPolicy"] = change.after
        elif change.attribute == "alpn_policy":
            # The API spells "no ALPN policy" as the value None (a rollback writes it).
            fields["AlpnPolicy"] = [change.after or "None"]
        else:
            raise UnsupportedChangeError(f"{change.resource}: listener {change.attribute}")
    client.modify_listener(ListenerArn=group[0].resource, **fields)


def _modify_attributes(client: Any, group: Sequence[Change]) -> None:
    for change in group:
        if change.attribute != HTTP2_ATTRIBUTE:
            raise UnsupportedChangeError(f"{change.resource}: load balancer {change.attribute}")
    client.modify_load_balancer_attributes(
        LoadBalancerArn=group[0].resource,
        Attributes=[
            {"Key": change.attribute, "Value": _attribute_value(change.after)} for change in group
        ],
    )


_WRITERS: dict[str, Callable[[Session, Sequence[Change]], None]] = {
    Kind.LISTENER: lambda session, group: _modify_listener(
        session.clients[group[0].location], group
    ),
    Kind.LOAD_BALANCER: lambda session, group: _modify_attributes(
        session.clients[group[0].location], group
    ),
    Kind.CLASSIC_LISTENER: lambda session, group: classic.write(
        session.classic[group[0].location], group
    ),
    Kind.HTTP_API_DOMAIN: lambda session, group: apigateway.write(
        session.http_apis[group[0].location], group
    ),
}
# The kinds whose settings `read_settings` re-reads by (resource, kind, region).
_V2_KINDS = frozenset({Kind.LISTENER, Kind.LOAD_BALANCER})


def _write(session: Session, group: Sequence[Change]) -> None:
    """One API call per resource."""
    first = group[0]
    writer = _WRITERS.get(first.kind)
    if writer is None:
        raise UnsupportedChangeError(
            f"{first.resource}: the boto3 executor cannot change a {first.kind}"
        )
    writer(session, group)


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_of(settings: dict[str, Any] | None, attribute: str) -> object:
    return None if settings is None else settings.get(attribute)
