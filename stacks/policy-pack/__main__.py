"""remediate's CrossGuard pack: `pulumi preview --policy-pack stacks/policy-pack`.

Thin wiring of `policies.py` (plain functions over remediate's rules) into pulumi_policy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

import policies


def _validate(types: frozenset[str]) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        for line in policies.violations(
            args.resource_type, args.name, args.props, args.get_config()
        ):
            report_violation(line, args.urn)

    return validate


def _remediate(
    types: frozenset[str],
) -> Callable[[ResourceValidationArgs], Mapping[str, Any] | None]:
    def remediate(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
        if args.resource_type not in types:
            return None
        return policies.remediation(args.resource_type, args.name, args.props, args.get_config())

    return remediate


def _validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    stack = [(item.resource_type, item.name, item.props) for item in args.resources]
    for index, line in policies.stack_violations(stack, args.get_config()):
        report_violation(line, args.resources[index].urn)


def _policy(item: policies.PackPolicy) -> ResourceValidationPolicy | StackValidationPolicy:
    schema = PolicyConfigSchema(properties=policies.CONFIG_SCHEMA)
    if item.stack:
        return StackValidationPolicy(
            name=item.name,
            description=item.description,
            validate=_validate_stack,
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=schema,
        )
    return ResourceValidationPolicy(
        name=item.name,
        description=item.description,
        validate=_validate(item.types),
        remediate=_remediate(item.types) if item.fixable else None,
        enforcement_level=(
            EnforcementLevel.REMEDIATE if item.fixable else EnforcementLevel.MANDATORY
        ),
        config_schema=schema,
    )


PolicyPack(
    name="remediate",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_policy(item) for item in policies.POLICIES],
)
