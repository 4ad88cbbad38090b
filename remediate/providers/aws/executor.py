"""The boto3 executor: modify_listener and modify_load_balancer_attributes (ELBv2), Classic
negotiation policies (`classic.write`), HTTP API domains (`apigateway.write`) and REST APIs and
their domains (`restapi.write`), then read back.

Every resource is read back after the writes, the failed ones too: a write whose answer was lost
(a 500 or a cut-off answer after the change landed) is applied when the resource holds the value
asked for, and a write that answered is only applied when the read-back agrees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from remediate.errors import RemediateError
from remediate.executors import NoSteps, Outcome, Status, Steps, confirmed
from remediate.model import Change, fingerprint
from remediate.progress import Progress
from remediate.provider import UnsupportedChangeError
from remediate.providers.aws import apigateway, classic, restapi
from remediate.providers.aws.discover import (
    Session,
    effective_attributes,
    failure_message,
    listener_settings,
    read_api_domains,
    read_classic,
    read_rest,
    read_settings,
)
from remediate.providers.aws.fleet import Signers, account_of, by_account
from remediate.providers.aws.model import (
    ApiDomainTarget,
    AWSSettings,
    ClassicListenerTarget,
    Kind,
    RestApiTarget,
    RestDomainTarget,
)
from remediate.providers.aws.rules import HTTP2_ATTRIBUTE


class Boto3Executor:
    """Writes through the account each change's resource lives in (see `fleet.Signers`)."""

    name = "boto3"

    def __init__(self, progress: Progress, settings: AWSSettings | None = None) -> None:
        self._progress = progress
        self._signers = Signers(settings or AWSSettings())
        self._sessions: dict[str, Session] = {}

    def _open(self, account: str, changes: Sequence[Change]) -> Session:
        if account not in self._sessions:
            self._sessions[account] = Session.open(
                sorted({change.location for change in changes}), self._signers.session(account)
            )
        return self._sessions[account]

    def _read(self, changes: Sequence[Change]) -> dict[str, dict[str, Any] | None]:
        found: dict[str, dict[str, Any] | None] = {}
        for account, group in by_account(changes).items():
            found.update(self._read_account(self._open(account, group), group))
        return found

    def _read_account(
        self, session: Session, changes: Sequence[Change]
    ) -> dict[str, dict[str, Any] | None]:
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
        rest = {
            change.resource: change.target
            for change in changes
            if isinstance(change.target, RestDomainTarget | RestApiTarget)
        }
        found.update(read_rest(session, rest))
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
        sessions: dict[str, Session] = {}
        refused: dict[str, str] = {}  # the API said no: nothing was written
        for account, account_changes in by_account(changes).items():
            try:
                sessions[account] = self._open(account, account_changes)
            except RemediateError as exc:
                # An account whose role cannot be assumed fails its changes, not the others'.
                refused.update((change.resource, str(exc)) for change in account_changes)
        by_resource: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            if change.resource not in refused:
                by_resource[change.resource].append(change)
        unsure: dict[str, str] = {}  # 5xx, transport or a cut-off answer: it may have landed
        answered: dict[str, dict[str, Any]] = {}  # what each successful write answered
        for resource, group in by_resource.items():
            first = group[0]
            steps.begin(group)
            self._progress.update(f"aws {first.location}", f"updating {first.name}")
            try:
                reported = _write(sessions[account_of(first)], group)
                if reported:
                    answered[resource] = reported
            except ClientError as exc:
                error = exc.response.get("Error", {})
                message = f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
                (unsure if status >= 500 else refused)[resource] = message
            except UnsupportedChangeError as exc:
                refused[resource] = str(exc)
            except (BotoCoreError, ResponseParserError) as exc:
                unsure[resource] = failure_message(exc)
            steps.end(group, refused.get(resource) or unsure.get(resource))
        # Failed writes are read back too: a write whose answer was lost may have landed.
        try:
            observed = self._read([c for c in changes if account_of(c) in sessions])
        except RemediateError as exc:
            # Without a read-back, a write's own answer is the best evidence there is.
            return [
                _unconfirmed(change, answered, refused, unsure.get(change.resource), exc)
                for change in changes
            ]
        outcomes: list[Outcome] = []
        for change in changes:
            if account_of(change) not in sessions:
                outcomes.append(Outcome(change, Status.FAILED, refused[change.resource]))
                continue
            value = _value_of(observed.get(change.resource), change.attribute)
            failure = refused.get(change.resource) or unsure.get(change.resource)
            if failure is not None and value == change.after:
                message = f"the write answered {failure}, but it landed: read back as asked"
                outcomes.append(Outcome(change, Status.APPLIED, message, observed=value))
                continue
            outcomes.append(confirmed(change, value, value == change.after, failure))
        return outcomes


def _modify_listener(client: Any, group: Sequence[Change]) -> dict[str, Any]:
    """modify_listener changes only the fields it is given; returns the settings it answers."""
    fields: dict[str, Any] = {}
    for change in group:
        if change.attribute == "ssl_policy":
            fields["SslPolicy"] = change.after
        elif change.attribute == "alpn_policy":
            # The API spells "no ALPN policy" as the value None (a rollback writes it).
            fields["AlpnPolicy"] = [change.after or "None"]
        else:
            raise UnsupportedChangeError(f"{change.resource}: listener {change.attribute}")
    answer = client.modify_listener(ListenerArn=group[0].resource, **fields)
    return listener_settings(answer["Listeners"][0])


def _modify_attributes(client: Any, group: Sequence[Change]) -> dict[str, Any]:
    for change in group:
        if change.attribute != HTTP2_ATTRIBUTE:
            raise UnsupportedChangeError(f"{change.resource}: load balancer {change.attribute}")
    answer = client.modify_load_balancer_attributes(
        LoadBalancerArn=group[0].resource,
        Attributes=[
            {"Key": change.attribute, "Value": _attribute_value(change.after)} for change in group
        ],
    )
    return effective_attributes(answer["Attributes"])


def _classic(session: Session, group: Sequence[Change]) -> dict[str, Any]:
    classic.write(session.classic[group[0].location], group)
    return {}  # its answer reports nothing to read the new state from


def _api_domain(session: Session, group: Sequence[Change]) -> dict[str, Any]:
    apigateway.write(session.http_apis[group[0].location], group)
    return {}


def _rest(session: Session, group: Sequence[Change]) -> dict[str, Any]:
    restapi.write(session.rest_apis[group[0].location], group)
    return {}  # read back below: the answer of an update is read as any later read


# Each writer returns the settings its answer reports ({} when the answer says nothing).
_WRITERS: dict[str, Callable[[Session, Sequence[Change]], dict[str, Any]]] = {
    Kind.LISTENER: lambda session, group: _modify_listener(
        session.clients[group[0].location], group
    ),
    Kind.LOAD_BALANCER: lambda session, group: _modify_attributes(
        session.clients[group[0].location], group
    ),
    Kind.CLASSIC_LISTENER: _classic,
    Kind.HTTP_API_DOMAIN: _api_domain,
    Kind.REST_API_DOMAIN: _rest,
    Kind.REST_API: _rest,
}
# The kinds whose settings `read_settings` re-reads by (resource, kind, region).
_V2_KINDS = frozenset({Kind.LISTENER, Kind.LOAD_BALANCER})


def _write(session: Session, group: Sequence[Change]) -> dict[str, Any]:
    """One API call per resource; returns the settings its answer reports."""
    first = group[0]
    writer = _WRITERS.get(first.kind)
    if writer is None:
        raise UnsupportedChangeError(
            f"{first.resource}: the boto3 executor cannot change a {first.kind}"
        )
    return writer(session, group)


def _unconfirmed(
    change: Change,
    answered: dict[str, dict[str, Any]],
    refused: dict[str, str],
    unsure: str | None,
    exc: RemediateError,
) -> Outcome:
    """The outcome of a change whose resource could not be read back: applied when the write's
    own answer shows the value, failed when the API refused it, unknown (failed, saying so) when
    its answer was lost."""
    resource = change.resource
    if resource in refused:
        return Outcome(change, Status.FAILED, refused[resource])
    if resource in answered:
        value = _value_of(answered[resource], change.attribute)
        if value == change.after:
            return Outcome(change, Status.APPLIED, f"not read back ({exc})", observed=value)
        return Outcome(change, Status.FAILED, f"the write answered {change.attribute}={value!r}")
    if unsure is None:
        return Outcome(change, Status.FAILED, f"written, but reading it back failed: {exc}")
    return Outcome(
        change,
        Status.FAILED,
        f"the write failed ({unsure}) and reading it back failed, state unknown: {exc}",
    )


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_of(settings: dict[str, Any] | None, attribute: str) -> object:
    return None if settings is None else settings.get(attribute)
