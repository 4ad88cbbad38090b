"""Minimal text edits to Nginx config files.

crossplane finds what to change; this module changes the original text around it, so comments,
blank lines, quoting, indentation and the include layout survive and the diff shows only what
matters. Statements are located by their ordinal in the file (the order crossplane reports them
in), from `lexer`, which unlike crossplane's keeps character offsets.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from remediate.errors import RemediateError
from remediate.providers.nginx.config import Directive
from remediate.providers.nginx.lexer import Statement, statements


@dataclass(frozen=True)
class Edit:
    """Replace `text[start:end]` of the file at `path` with `new` (an insertion when equal)."""

    path: str
    start: int
    end: int
    new: str


@dataclass
class Tree:
    """The files of one host and the statement offsets of each, for building edits."""

    files: Mapping[str, str]
    _statements: dict[str, list[Statement]] = field(default_factory=dict)

    def statement(self, directive: Directive) -> Statement:
        if directive.file not in self._statements:
            self._statements[directive.file] = statements(self.files[directive.file])
        found = self._statements[directive.file]
        if (
            directive.ordinal >= len(found)
            or found[directive.ordinal].name.line != directive.line
            or _unquote(found[directive.ordinal].name.text) != directive.name
        ):
            raise RemediateError(
                f"{directive.where()}: cannot locate the {directive.name} statement for an edit"
            )
        return found[directive.ordinal]

    def text(self, directive: Directive) -> str:
        """The statement exactly as written (to copy it elsewhere)."""
        stmt = self.statement(directive)
        return self.files[directive.file][stmt.start : stmt.end]

    def unit(self, path: str) -> str:
        """The indentation step of a file, for lines nested inside new blocks."""
        return _unit(self.files[path])

    def replace_args(self, directive: Directive, new_args: str) -> Edit:
        """Replace everything between the name and the terminator with `new_args`; a single
        quoted argument replaced by a single one keeps its quotes."""
        stmt = self.statement(directive)
        if not stmt.args:
            return Edit(directive.file, stmt.name.end, stmt.name.end, " " + new_args)
        first = stmt.args[0]
        if len(stmt.args) == 1 and first.quoted and " " not in new_args:
            quote = first.text[0]
            new_args = f"{quote}{new_args}{quote}"
        return Edit(directive.file, first.start, stmt.args[-1].end, new_args)

    def replace_arg(self, directive: Directive, index: int, new: str) -> Edit:
        stmt = self.statement(directive)
        token = stmt.args[index]
        return Edit(directive.file, token.start, token.end, new)

    def add_param(self, directive: Directive, param: str, after: str | None = None) -> Edit:
        """Add a parameter to a statement, after the argument `after` when present."""
        stmt = self.statement(directive)
        anchor = next(
            (t for t in stmt.args if t.text == after), stmt.args[-1] if stmt.args else None
        )
        offset = anchor.end if anchor is not None else stmt.name.end
        return Edit(directive.file, offset, offset, " " + param)

    def insert_after(self, directive: Directive, lines: Sequence[str]) -> Edit:
        """New statements on their own lines after `directive`, at its indentation."""
        text = self.files[directive.file]
        stmt = self.statement(directive)
        return self._insert_at(directive.file, text, stmt.end, _indent_at(text, stmt.start), lines)

    def insert_first(self, block: Directive, lines: Sequence[str]) -> Edit:
        """New statements at the start of `block`, at its children's indentation."""
        text = self.files[block.file]
        stmt = self.statement(block)
        indent = _indent_at(text, stmt.start) + _unit(text)
        for child in block.children or ():
            if child.file == block.file:
                child_stmt = self.statement(child)
                if _line_start(text, child_stmt.start) > stmt.end:
                    indent = _indent_at(text, child_stmt.start)
                break
        return self._insert_at(block.file, text, stmt.end, indent, lines)

    def insert_before(self, directive: Directive, lines: Sequence[str]) -> Edit:
        """New lines (a blank one after them) just before the line of `directive`, above the
        comment lines directly on top of it (they describe it, and stay with it)."""
        text = self.files[directive.file]
        stmt = self.statement(directive)
        start = _line_start(text, stmt.start)
        indent = _indent_at(text, stmt.start)
        if text[start : stmt.start].strip():
            return self._insert_at(directive.file, text, stmt.start, indent, lines)
        while start > 0:
            above = _line_start(text, start - 1)
            if not text[above:start].lstrip().startswith("#"):
                break
            start = above
        body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines)
        return Edit(directive.file, start, start, body + "\n")

    @staticmethod
    def _insert_at(path: str, text: str, offset: int, indent: str, lines: Sequence[str]) -> Edit:
        end_of_line = text.find("\n", offset)
        rest = text[offset : len(text) if end_of_line < 0 else end_of_line]
        if rest.strip() and not rest.strip().startswith("#"):
            # Something else follows on this line (`location / { proxy_pass x; }`): stay inline.
            return Edit(path, offset, offset, " " + " ".join(line.strip() for line in lines))
        body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines)
        if end_of_line < 0:
            return Edit(path, len(text), len(text), "\n" + body)
        return Edit(path, end_of_line + 1, end_of_line + 1, body)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _indent_at(text: str, offset: int) -> str:
    start = _line_start(text, offset)
    line = text[start:offset]
    return line[: len(line) - len(line.lstrip())]


def _unit(text: str) -> str:
    """The file's indentation step: a tab when its lines are indented with tabs, else 4 spaces."""
    tabbed = sum(1 for line in text.splitlines() if line.startswith("\t"))
    spaced = sum(1 for line in text.splitlines() if line.startswith(" "))
    return "\t" if tabbed > spaced else "    "


def apply(files: Mapping[str, str], edits: Sequence[Edit]) -> dict[str, str]:
    """The new text of every file the edits touch. Identical edits count once; insertions at the
    same offset keep the order they were made in."""
    by_path: dict[str, list[Edit]] = {}
    for edit in edits:
        bucket = by_path.setdefault(edit.path, [])
        if edit not in bucket:
            bucket.append(edit)
    result: dict[str, str] = {}
    for path, bucket in by_path.items():
        text = files[path]
        ordered = sorted(enumerate(bucket), key=lambda item: (item[1].start, item[0]))
        pieces: list[str] = []
        position = 0
        for _, edit in ordered:
            if edit.start < position:
                raise RemediateError(f"{path}: overlapping edits at offset {edit.start}")
            pieces.append(text[position : edit.start])
            pieces.append(edit.new)
            position = edit.end
        pieces.append(text[position:])
        new_text = "".join(pieces)
        if new_text != text:
            result[path] = new_text
    return result


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a{path}",
            tofile=f"b{path}",
        )
    )
