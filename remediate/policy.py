"""The policy file: a pydantic model, YAML loading with line-accurate errors, JSON Schema."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from remediate.errors import PolicyError

TLS_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")


def tls_key(version: str) -> tuple[int, ...]:
    """Sort key for "1.0".."1.3" (and anything dotted)."""
    return tuple(int(part) for part in version.split("."))


class Section(BaseModel):
    """Base of every policy section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSSettings(Section):
    minimum: Literal["1.2", "1.3"] = Field(
        default="1.2", description='Lowest TLS version clients may use: "1.2" or "1.3".'
    )

    @field_validator("minimum", mode="before")
    @classmethod
    def _quote_floats(cls, value: Any) -> Any:
        # YAML reads an unquoted 1.2 as a float; accept it as the version it obviously means.
        if isinstance(value, float):
            return str(value)
        return value

    @property
    def below_minimum(self) -> list[str]:
        """The TLS versions a compliant endpoint must refuse."""
        return [v for v in TLS_VERSIONS if tls_key(v) < tls_key(self.minimum)]


class WebSocketSettings(Section):
    locations: list[str] = Field(
        default_factory=list,
        description='Nginx locations that carry WebSockets; ["*"] means every proxied location.',
    )


class Exclusion(Section):
    match: str = Field(
        description="Glob matched against the resource id (ARN, selfLink, host:path)."
    )
    reason: str = Field(min_length=1)
    until: date | None = None

    def matches(self, resource: str) -> bool:
        return fnmatch.fnmatchcase(resource, self.match)

    def expired(self, today: date) -> bool:
        return self.until is not None and today > self.until


class Policy(Section):
    """What a compliant edge looks like, and where to look for one."""

    version: Literal[1] = 1
    tls: TLSSettings = Field(default_factory=TLSSettings)
    http2: bool = True
    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    exclude: list[Exclusion] = Field(default_factory=list)

    def digest(self) -> str:
        """A stable digest of the policy's content, recorded with every run."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def sections(self) -> dict[str, BaseModel]:
        """Each configured provider's section, by provider name.

        The sections are fields of the model `registry.policy_model()` builds from the registered
        providers; a `Policy` made directly has none."""
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), BaseModel) and name not in _CORE
        }

    @property
    def providers(self) -> list[str]:
        """The providers this policy configures, in a stable order."""
        return list(self.sections)


_CORE = frozenset(Policy.model_fields)


def build(**settings: Any) -> Policy:
    """A policy from keyword settings, provider sections included (`build(aws={"regions": []})`)."""
    return model().model_validate(settings)


def model() -> type[Policy]:
    """The policy model with every registered provider's section."""
    from remediate import registry

    return registry.policy_model()


def schema() -> dict[str, Any]:
    """The JSON Schema of the policy file."""
    return model().model_json_schema()


def load(path: Path | str) -> Policy:
    """Read and validate a policy file; every problem becomes one `PolicyError` line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; `source` names it in errors."""
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = (exc.problem or exc.context or "malformed YAML").strip()
        raise PolicyError(f"{source}{at}: malformed YAML: {problem}") from None
    except YAMLError as exc:
        raise PolicyError(f"{source}: malformed YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}:1: the policy must be a mapping of settings")
    try:
        return model().model_validate(_plain(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(data, loc)
        field = _dotted(loc)
        where = f"{source}:{line}" if line else source
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise PolicyError(f"{where}: {field}: {_describe(error)}{suffix}") from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists."""
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _dotted(loc: tuple[Any, ...]) -> str:
    """`("exclude", 0, "reason")` as `exclude[0].reason`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the YAML document."""
    line: int | None = None
    node = data
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _describe(error: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "missing":
        return "required setting is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be {expected} (got {value!r})"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]} (got {value!r})"
