"""The policy file: a pydantic model, YAML loading with line-accurate errors, JSON Schema."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.composer import MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import Scanner

from remediate.errors import PolicyError
from remediate.inputs import decode_text, read_bytes

TLS_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")
# Limits that refuse a broken or hostile policy file at once instead of exhausting time or memory:
# a real policy is a few kilobytes, a few levels deep, with a handful of aliases if any.
MAX_POLICY_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 50
MAX_NODES = 100_000


def tls_key(version: str) -> tuple[int, ...]:
    """Sort key for "1.0".."1.3" (and anything dotted)."""
    return tuple(int(part) for part in version.split("."))


class Section(BaseModel):
    """Base of every policy section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Section)


def section_of(sections: Mapping[str, BaseModel], name: str, model: type[S]) -> S:
    """`sections[name]` as `model`, or `model`'s defaults when it is missing."""
    found = sections.get(name)
    return found if isinstance(found, model) else model()


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

    def section(self, name: str, model: type[S]) -> S:
        """The section of provider `name` as `model`, or `model`'s defaults when the policy has
        none (so callers read settings without checking whether the section exists)."""
        return section_of(self.sections, name, model)

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
    data = read_bytes(path, "policy file", MAX_POLICY_BYTES, PolicyError)
    return parse(decode_text(data, str(path), "a YAML policy", PolicyError), str(path))


def parse(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; `source` names it in errors."""
    root, data = read_yaml(text, source)
    if not isinstance(data, dict):
        raise PolicyError(f"{source}:1: the policy must be a mapping of settings")
    return validate(model(), root, data, source)


def read_yaml(text: str, source: str) -> tuple[Node | None, Any]:
    """YAML text as its node tree (for line numbers) and its data; `source` names it in errors.

    The YAML is composed with ruamel's safe loader (comments are not kept: the round-trip
    loader's comment handling costs time quadratic in the number of comment lines), limited to
    `MAX_DEPTH` levels, and refused when its aliases would expand it beyond `MAX_NODES` nodes.
    """
    yaml = YAML(typ="safe", pure=True)
    yaml.max_depth = MAX_DEPTH
    yaml.Scanner = _Scanner
    yaml.Constructor = _Constructor
    try:
        root = yaml.compose(text)
        if root is None:
            return None, {}
        _check_expansion(root, source)
        return root, yaml.constructor.construct_document(root)
    except MaxDepthExceededError as exc:
        raise PolicyError(f"{source}{_at(exc)}: nested deeper than {MAX_DEPTH} levels") from None
    except MarkedYAMLError as exc:
        problem = " ".join((exc.problem or exc.context or "malformed YAML").split())
        raise PolicyError(f"{source}{_at(exc)}: malformed YAML: {problem}") from None
    except ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise PolicyError(
            f"{source}:{at}: malformed YAML: control character U+{exc.character:04X} is not allowed"
        ) from None
    except YAMLError as exc:
        raise PolicyError(f"{source}: malformed YAML: {' '.join(str(exc).split())}") from None


M = TypeVar("M", bound=BaseModel)


def validate(kind: type[M], root: Node | None, data: Any, source: str) -> M:
    """`data` (read by `read_yaml`) as `kind`; the first problem is one `PolicyError` line
    naming the file, line and field."""
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(root, loc) if root is not None else None
        field = _dotted(loc)
        where = f"{source}:{line}" if line else source
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise PolicyError(f"{where}: {field}: {_describe(error)}{suffix}") from None


class _Scanner(Scanner):
    """The scanner, refusing flow collections nested deeper than `MAX_DEPTH` as it meets them:
    it reads ahead through every `[` of a nest before handing on the first one, in time that grows
    with the square of the nesting, so the composer's own depth limit would come too late."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if self.flow_level >= MAX_DEPTH:
            raise MaxDepthExceededError(None, None, "too deep", self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _Constructor(SafeConstructor):
    """The safe constructor, except that timestamps stay text (the model parses dates, so an
    impossible one such as 2027-02-30 is an error naming its field), and a scalar that cannot be
    read as its tag says (`!!int abc`) is a YAML error at its line."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            value = str(node.value)
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise ConstructorError(
                None, None, f"cannot read {shown!r} as {node.tag}: {exc}", node.start_mark
            ) from None

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        return self.construct_scalar(node)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def _at(exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return f":{mark.line + 1}" if mark is not None else ""


def _check_expansion(root: Node, source: str) -> None:
    """Refuse a document that its aliases expand beyond `MAX_NODES` nodes (an alias bomb: a few
    lines that stand for billions of values) or `MAX_DEPTH` levels (an alias inside itself)."""
    count = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise PolicyError(
                f"{source}:{line}: nested deeper than {MAX_DEPTH} levels once its aliases are "
                "expanded (an alias inside itself?)"
            )
        if count > MAX_NODES:
            raise PolicyError(
                f"{source}:{line}: more than {MAX_NODES} values once its aliases are expanded "
                "(an alias bomb?)"
            )
        if isinstance(node, MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)


def _dotted(loc: tuple[Any, ...]) -> str:
    """`("exclude", 0, "reason")` as `exclude[0].reason`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


def _line_of(root: Node, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the composed YAML document."""
    line: int | None = None
    node = root
    for part in loc:
        if isinstance(node, MappingNode):
            found = next(
                ((key, value) for key, value in node.value if key.value == str(part)), None
            )
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
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
        return f"must be {expected} (got {_shown(value)})"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]} (got {_shown(value)})"


def _shown(value: Any) -> str:
    """A value as the error quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."
