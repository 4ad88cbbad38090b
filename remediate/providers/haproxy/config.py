"""A line-level model of an HAProxy configuration, and an editor that changes only the lines it
must.

HAProxy reads its configuration line by line: a section keyword (`global`, `defaults [name]`,
`frontend`, `listen`, `backend`, and the auxiliary ones such as `peers` or `cache`) opens a section
that lasts until the next section keyword or the end of the file; every other line is one
statement of the open section. Words are separated by blanks; `#` starts a comment outside quotes;
`"..."` and `'...'` quote, and a backslash escapes the next character. `.if`/`.elif`/`.else`/
`.endif` wrap lines in conditional blocks that HAProxy evaluates at load time. Several files (or a
directory, whose `*.cfg` files load in lexical order) are read one after the other.

No maintained Python parser keeps comments and layout, so the model keeps every line's exact text:
a `Statement` knows its file, line number and words, and `Editor` rewrites whole lines (or inserts
new ones with the indentation of their neighbours), leaving every other byte alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from remediate.errors import RemediateError

# Section keywords of HAProxy 2.x/3.x; `PROXIES` carry binds, servers and timeouts.
PROXIES = ("defaults", "frontend", "listen", "backend")
SECTIONS = (
    "global",
    *PROXIES,
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "cache",
    "program",
    "http-errors",
    "ring",
    "log-forward",
    "fcgi-app",
    "crt-store",
    "traces",
    "acme",
    "dynamic-update",
)
CONDITIONALS = (".if", ".elif", ".else", ".endif")


class ConfigError(RemediateError):
    """A configuration this model cannot read (unbalanced `.if`, unterminated quote...)."""


def tokens(text: str) -> tuple[list[tuple[str, int, int]], str]:
    """The words of one line as (word, start, end) with quotes removed and escapes resolved
    (`start:end` is the word's raw span in `text`), and the line's comment (`# ...`, or "").

    Raises ValueError on an unterminated quote."""
    words: list[tuple[str, int, int]] = []
    current: list[str] = []
    begin = -1
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(text):
                index += 1
                current.append(text[index])
            else:
                current.append(char)
        elif char == "#" and begin < 0:
            return words, text[index:]
        elif char in " \t":
            if begin >= 0:
                words.append(("".join(current), begin, index))
                current, begin = [], -1
        else:
            if begin < 0:
                begin = index
            if char == "\\" and index + 1 < len(text):
                index += 1
                current.append(text[index])
            elif char in "\"'":
                quote = char
            else:
                current.append(char)
        index += 1
    if quote:
        raise ValueError(f"unterminated {quote} quote")
    if begin >= 0:
        words.append(("".join(current), begin, len(text)))
    return words, ""


def split_words(text: str) -> tuple[list[str], str]:
    """The words of one line and its comment (see `tokens`)."""
    found, comment = tokens(text)
    return [word for word, _, _ in found], comment


@dataclass(eq=False)
class Statement:
    """One line of a configuration that says something: its place, words and exact text."""

    file: str
    line: int
    text: str
    words: list[str]
    section: Section | None
    condition: tuple[str, ...] = ()
    """The `.if`/`.elif`/`.else` lines this statement sits under, outermost first."""

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def args(self) -> list[str]:
        return self.words[1:]

    @property
    def indent(self) -> str:
        return self.text[: len(self.text) - len(self.text.lstrip(" \t"))]

    def option(self, name: str) -> str | None:
        """The value after the word `name` (`ssl-min-ver TLSv1.2` -> `TLSv1.2`), or None."""
        for index, word in enumerate(self.words[:-1]):
            if word == name:
                return self.words[index + 1]
        return None

    def has(self, *names: str) -> bool:
        return any(name in self.words[1:] for name in names)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(eq=False)
class Section:
    """A section: its keyword, name, header line and statements in order."""

    kind: str
    name: str
    header: Statement
    statements: list[Statement] = field(default_factory=list)
    defaults: Section | None = None
    """For a proxy: the `defaults` section it inherits from (the last one before it, or the one
    named by `from`), or None."""

    @property
    def file(self) -> str:
        return self.header.file

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}".strip()

    def all(self, keyword: str, *first_args: str) -> list[Statement]:
        """Statements of this section with `keyword` (and, given, these first arguments)."""
        n = len(first_args)
        return [
            s
            for s in self.statements
            if s.keyword == keyword and tuple(s.args[:n]) == tuple(first_args)
        ]

    def last(self, keyword: str, *first_args: str) -> Statement | None:
        """The statement that takes effect (HAProxy keeps the last of a repeated setting)."""
        found = self.all(keyword, *first_args)
        return found[-1] if found else None

    def effective(self, keyword: str, *first_args: str) -> Statement | None:
        """The setting in force for this proxy: its own, else its defaults section's."""
        own = self.last(keyword, *first_args)
        if own is not None or self.defaults is None:
            return own
        return self.defaults.last(keyword, *first_args)

    @property
    def mode(self) -> str:
        """`http` or `tcp` (HAProxy's default)."""
        found = self.effective("mode")
        return found.args[0] if found is not None and found.args else "tcp"


@dataclass
class Config:
    """Every file of one HAProxy configuration in load order, parsed into sections."""

    files: dict[str, str]
    order: list[str]
    sections: list[Section] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[Section]:
        return [s for s in self.sections if s.kind in kinds]

    @property
    def global_section(self) -> Section | None:
        """The first `global` section (later ones add to it; remediate edits the first)."""
        found = self.of_kind("global")
        return found[0] if found else None

    def global_settings(self, keyword: str) -> Statement | None:
        """The last `keyword` statement across all `global` sections."""
        found = [s for section in self.of_kind("global") for s in section.all(keyword)]
        return found[-1] if found else None

    def proxy(self, name: str) -> Section | None:
        """The backend (or listen) section called `name`."""
        for section in self.of_kind("backend", "listen"):
            if section.name == name:
                return section
        return None

    def statements(self) -> Iterator[Statement]:
        for section in self.sections:
            yield section.header
            yield from section.statements


def parse(files: Mapping[str, str], order: Sequence[str]) -> Config:
    """Parse `files` ({path: text}) in load order `order` into one `Config`.

    Raises ConfigError naming the file and line of anything this model cannot read."""
    config = Config(files=dict(files), order=list(order))
    named_defaults: dict[str, Section] = {}
    last_defaults: Section | None = None
    for path in order:
        if path not in files:
            raise ConfigError(f"{path}: listed in the load order but not collected")
        current: Section | None = None
        conditions: list[str] = []
        for number, raw in enumerate(files[path].splitlines(), start=1):
            try:
                words, _comment = split_words(raw)
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: {exc}") from None
            if not words:
                continue
            keyword = words[0]
            if keyword in CONDITIONALS:
                _condition(path, number, raw.strip(), keyword, conditions)
                continue
            statement = Statement(path, number, raw, words, current, tuple(conditions))
            if keyword in SECTIONS:
                name = words[1] if len(words) > 1 and keyword != "global" else ""
                current = Section(keyword, name, statement)
                statement.section = current
                config.sections.append(current)
                if keyword == "defaults":
                    last_defaults = current
                    if name:
                        named_defaults[name] = current
                if keyword in PROXIES:
                    source = statement.option("from")
                    parent = named_defaults.get(source) if source else None
                    if source and parent is None:
                        raise ConfigError(f"{path}:{number}: no defaults section named {source}")
                    current.defaults = parent or (last_defaults if keyword != "defaults" else None)
                continue
            if current is None:
                raise ConfigError(f"{path}:{number}: {keyword!r} outside of any section")
            current.statements.append(statement)
        if conditions:
            raise ConfigError(f"{path}: .if block opened by {conditions[0]!r} is never closed")
    return config


def _condition(path: str, number: int, line: str, keyword: str, stack: list[str]) -> None:
    if keyword == ".if":
        stack.append(line)
    elif not stack:
        raise ConfigError(f"{path}:{number}: {keyword} without .if")
    elif keyword == ".endif":
        stack.pop()
    else:
        stack[-1] = line


@dataclass(frozen=True)
class Edit:
    """One line-level change: replace line `line` of `path` (0: insert only) with `lines`, or
    insert `lines` after line `after`."""

    path: str
    line: int
    lines: tuple[str, ...]
    insert: bool = False


class Editor:
    """Collects edits to a `Config`'s files and renders each changed file's new text.

    Replacing a line keeps its indentation and its trailing comment; inserted lines take the
    indentation of the statement they follow (or of the section's first statement)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._replaced: dict[tuple[str, int], str] = {}
        self._inserted: dict[tuple[str, int], list[str]] = {}

    def text(self, statement: Statement) -> str:
        """The statement's line as already edited."""
        return self._replaced.get((statement.file, statement.line), statement.text)

    def current_words(self, statement: Statement) -> list[str]:
        """The statement's words as already edited."""
        return split_words(self.text(statement))[0]

    def set_option(self, statement: Statement, name: str, value: str | None) -> None:
        """Set `name value` on a statement (`ssl-min-ver TLSv1.2` on a bind line): the value is
        replaced in place when the option is there, else the words are appended after the last
        word (before any comment); `value` None adds a bare flag. Every other byte is kept."""
        text = self.text(statement)
        found, _ = tokens(text)
        names = [word for word, _, _ in found]
        if name in names[1:]:
            index = names.index(name, 1)
            if value is None:
                return
            if index + 1 < len(found):
                _, start, end = found[index + 1]
                text = text[:start] + _quote(value) + text[end:]
            else:
                text = text[: found[index][2]] + " " + _quote(value) + text[found[index][2] :]
        else:
            end = found[-1][2]
            added = name if value is None else f"{name} {_quote(value)}"
            text = text[:end] + " " + added + text[end:]
        self._replaced[(statement.file, statement.line)] = text

    def replace_arg(self, statement: Statement, index: int, value: str) -> None:
        """Replace argument `index` (0: the first word after the keyword) in place."""
        text = self.text(statement)
        found, _ = tokens(text)
        _, start, end = found[index + 1]
        self._replaced[(statement.file, statement.line)] = text[:start] + _quote(value) + text[end:]

    def remove_words(self, statement: Statement, *names: str) -> None:
        """Drop the flags `names` from a statement, with the blanks before each."""
        text = self.text(statement)
        found, _ = tokens(text)
        for word, start, end in reversed(found[1:]):
            if word in names:
                blank = len(text[:start]) - len(text[:start].rstrip(" \t"))
                text = text[: start - blank] + text[end:]
        self._replaced[(statement.file, statement.line)] = text

    def insert_after(self, statement: Statement, lines: Sequence[str]) -> None:
        """Insert `lines` (without indentation) after `statement`, indented like it; after a
        section header, indented like the section's statements (a tab when it has none)."""
        indent = statement.indent
        section = statement.section
        if section is not None and statement is section.header:
            body = [s for s in section.statements if s.file == statement.file]
            indent = body[0].indent if body else "\t"
        key = (statement.file, statement.line)
        self._inserted.setdefault(key, []).extend(indent + line for line in lines)

    def render(self) -> dict[str, str]:
        """{path: new text} of every file an edit changed (unchanged files are left out)."""
        touched = {path for path, _ in self._replaced} | {path for path, _ in self._inserted}
        result: dict[str, str] = {}
        for path in touched:
            old = self._config.files[path]
            out: list[str] = []
            for number, line in enumerate(old.splitlines(keepends=True), start=1):
                ending = line[len(line.rstrip("\r\n")) :]
                replaced = self._replaced.get((path, number))
                out.append(line if replaced is None else replaced + ending)
                for extra in self._inserted.get((path, number), ()):
                    if not out[-1].endswith("\n"):
                        out[-1] += "\n"
                    out.append(extra + (ending or "\n"))
            new = "".join(out)
            if new != old:
                result[path] = new
        return result


# HAProxy's time format: a number and an optional unit; a bare number is milliseconds.
_TIME = re.compile(r"([0-9]+)(us|ms|s|m|h|d)?")
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(value: str) -> float | None:
    """A time in HAProxy's format (`2s`, `50000`, `1m`) in seconds; None when it is not one."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _TIME_UNITS[match.group(2) or "ms"]


def _quote(word: str) -> str:
    if word and not re.search(r"[\s#\"'\\]", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unified_diff(path: str, before: str, after: str) -> str:
    """The unified diff of one file's change, as a reviewer reads it."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a{path}",
            tofile=f"b{path}",
        )
    )
