"""`require`: which packages of an extra are missing, read from the installed metadata. (A fresh
virtualenv with only the core wheel, where every extra is missing, is in test_wheel.py.)"""

from __future__ import annotations

from remediate.errors import _missing, require


def test_only_the_extras_requirements_that_are_not_installed_are_named() -> None:
    requirements = [
        "pydantic>=2",  # core: not the extra's
        "boto3>=1; extra == 'x'",
        "not-a-published-package>=1; extra == 'x'",
        "another-missing-package; extra == 'y'",
    ]
    assert _missing(requirements, "x", set()) == ["not-a-published-package"]


def test_an_installed_package_without_its_own_extra_counts_as_missing() -> None:
    # boto3 is installed, its `crt` extra (botocore[crt] -> awscrt) is not.
    assert _missing(["boto3[crt]; extra == 'x'"], "x", set()) == ["boto3[crt]"]
    assert _missing(["moto[server]; extra == 'x'"], "x", set()) == []


def test_remediates_own_extras_inside_an_extra_are_expanded() -> None:
    assert _missing(["remediate[gcp,nginx]; extra == 'x'"], "x", set()) == []


def test_an_installed_extra_passes() -> None:
    # The development install has every extra.
    require("sandbox", "remediate demo")
    require("pulumi", "the pulumi executor")
