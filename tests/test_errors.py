"""`requires`: an optional extra's missing module becomes one line naming the extra; any other
missing module stays the bug it is. (A missing package found before the body runs is covered end
to end, through a wheel installed without extras, in test_wheel.py.)"""

from __future__ import annotations

import pytest

from remediate.errors import MissingExtraError, requires


def test_a_missing_module_of_the_extra_inside_the_body_names_the_extra() -> None:
    with pytest.raises(MissingExtraError) as caught, requires("nginx", "the nginx provider"):
        raise ModuleNotFoundError("No module named 'ansible_runner'", name="ansible_runner")
    assert str(caught.value) == (
        "the nginx provider needs crossplane, ansible-runner, ansible-core: "
        "pip install 'remediate[nginx]'"
    )


def test_a_missing_parent_package_of_the_extra_names_it_too() -> None:
    with pytest.raises(MissingExtraError, match=r"remediate\[gcp\]"), requires("gcp", "gcp"):
        raise ModuleNotFoundError("No module named 'google'", name="google")


def test_an_unrelated_missing_module_is_not_blamed_on_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError, match="somewhere_else"), requires("gcp", "gcp"):
        raise ModuleNotFoundError("No module named 'somewhere_else'", name="somewhere_else")


def test_no_extra_means_nothing_is_checked() -> None:
    with pytest.raises(ModuleNotFoundError), requires(None, "the aws provider"):
        raise ModuleNotFoundError("No module named 'google'", name="google")
