"""One pass over an Nginx config file's text: its tokens with character offsets, its statements
(where each sits in the text, for `edit`), and the statements as crossplane reports them (for
`config`), so that a file is tokenised once however many times it is read.

crossplane's own lexer reads a file one character at a time through several generators, and only
from a path; for a tree of hundreds of files that was most of a plan's parse. The regular
expressions below split tokens as crossplane does (a statement of plain words in one match, any
other a token at a time), and `Scan.parsed` is crossplane's statement list for the file (as
`crossplane.parse(path, single=True, check_ctx=False, comments=False)` reports it: directive,
line, args, block), with crossplane's own argument checks
(`crossplane.analyzer`). Where crossplane's reading has corners this pass does not reproduce
(carriage returns, `${` variables, Lua blocks, a comment among a statement's arguments, anything
that is not well formed), `parsed` is None and the caller asks crossplane itself, so errors and
unusual files read exactly as before.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


class Token(NamedTuple):
    text: str
    start: int
    end: int
    line: int
    quoted: bool


class Statement:
    """Where one statement sits in its file's text: its `name` token, its argument tokens and
    `end`, the offset just after its terminating `;` or `{`. A statement read whole is given the
    file's `text` instead of its arguments (`args`)."""

    __slots__ = ("_args", "_text", "end", "name")

    def __init__(
        self, name: Token, end: int, args: list[Token] | None = None, text: str = ""
    ) -> None:
        self.name = name
        self.end = end
        self._args = args
        self._text = text

    @property
    def start(self) -> int:
        return self.name.start

    @property
    def args(self) -> list[Token]:
        """The argument tokens. A statement read whole (`_PLAIN`) has its arguments tokenised
        only when asked: edits ask for a few statements of a file, parsing for none."""
        if self._args is None:
            self._args = list(tokens(self._text, start=self.name, end=self.end - 1))
        return self._args


# One nginx token at a time, after the blanks before it, as nginx's own lexer splits them: a
# comment; `{`, `}` and `;`; a quoted string (a backslash escapes the next character, newlines
# allowed, unterminated at the end of the file); or a word, which runs to a blank or `{};`, where a
# backslash escapes the next character and `${...}` is a variable whose braces do not end it (as
# crossplane reads them, whose statement order the edits follow, an escaped `\$` included). Only
# blanks at the end of the text match none of them.
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<punct>[{};])
      | (?P<quoted>(?P<q>["'])(?:\\[\s\S]?|(?!(?P=q))[^\\])*(?P=q)?)
      | (?P<word>(?:\\?\$\{[^}]*\}?|\\[\s\S]?|[^\s{};\\])+))""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\([\s\S])")


# A whole statement whose words are plain (no quote, escape, `${` or comment among them), a
# comment, or a `}`: most of a real file, read with one match each instead of one per token.
# Anything else fails to match and is read token by token (`_TOKEN`).
_PLAIN_WORD = r"(?:[^\s{};\\#\"'$]|\$(?!\{))(?:[^\s{};\\$]|\$(?!\{))*"
_PLAIN = re.compile(
    rf"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<close>\}})
      | (?P<name>{_PLAIN_WORD})(?P<args>(?:\s+{_PLAIN_WORD})*)\s*(?P<term>[;{{]))""",
    re.VERBOSE,
)


def tokens(
    text: str, comments: bool = False, *, start: Token | None = None, end: int | None = None
) -> Iterator[Token]:
    """nginx's tokens with offsets: words, quoted strings, `{`, `}`, `;`; comments (an unquoted
    token starting with `#`) only when asked for. From just after the token `start` (counting
    lines from it) up to offset `end` when given, else the whole text."""
    line, counted = (start.line, start.end) if start is not None else (1, 0)
    count = text.count
    for match in _TOKEN.finditer(text, counted, len(text) if end is None else end):
        kind = match.lastgroup
        if kind == "comment" and not comments:
            continue
        first, last = match.span(match.lastindex or 0)
        line += count("\n", counted, first)
        counted = first
        yield Token(text[first:last], first, last, line, kind == "quoted")


@dataclass(frozen=True)
class Scan:
    statements: list[Statement]
    """Every statement of the file, in document order (blocks before their contents)."""
    parsed: list[dict[str, Any]] | None
    """crossplane's statements for the file, or None where only crossplane can tell."""


def _unquote(raw: str) -> str:
    """A quoted token's value as crossplane gives it: without the quotes, and an escaped quote of
    the same kind as a bare one (every other escape stays as written)."""
    quote = raw[0]
    return _ESCAPE.sub(lambda m: quote if m.group(1) == quote else m.group(0), raw[1:-1])


def _terminated(raw: str) -> bool:
    """Whether a quoted token ends with its closing quote (not an escaped one)."""
    body = raw[:-1]
    escapes = len(body) - len(body.rstrip("\\"))
    return len(raw) >= 2 and raw[-1] == raw[0] and escapes % 2 == 0


class _Parse:
    """crossplane's statement tree, built token by token; `ok` turns False (and stays so) at the
    first thing it leaves to crossplane."""

    def __init__(self, text: str) -> None:
        self.root: list[dict[str, Any]] = []
        self.stack: list[tuple[list[dict[str, Any]], tuple[str, ...]]] = [(self.root, ())]
        self.current: dict[str, Any] | None = None
        try:
            from crossplane import analyzer, errors, lexer
        except ImportError:
            # `config` asks crossplane for the file, and says how to install it.
            self.ok = False
            return
        self._analyze = analyzer.analyze
        self._enter = analyzer.enter_block_ctx
        self._error = errors.NgxParserDirectiveError
        self.ok = not (
            "\r" in text  # crossplane reads files with universal newlines
            or "${" in text
            or text.endswith("\\")
            or any(name in text for name in lexer.EXTERNAL_LEXERS)
        )

    def start(self, token: Token) -> None:
        # An empty statement, or an unterminated quote: crossplane reads those its own way.
        if (token.text in ("{", ";")) if not token.quoted else not _terminated(token.text):
            self.ok = False
        else:
            value = _unquote(token.text) if token.quoted else token.text
            self.current = {"directive": value, "line": token.line, "args": []}

    def arg(self, token: Token) -> None:
        assert self.current is not None
        if token.quoted and not _terminated(token.text):
            self.ok = False
        else:
            self.current["args"].append(_unquote(token.text) if token.quoted else token.text)

    def close_block(self) -> None:
        if len(self.stack) == 1:
            self.ok = False
        else:
            self.stack.pop()

    def whole(self, name: str, line: int, args: list[str], term: str) -> None:
        """A plain statement read at once: its name, line, arguments and terminator."""
        self.current = {"directive": name, "line": line, "args": args}
        self.end(term)

    def end(self, term: str) -> None:
        stmt = self.current
        assert stmt is not None
        self.current = None
        if term == "}":
            # crossplane ends the statement there and leaves the block open.
            self.ok = False
            return
        if stmt["directive"] == "if":
            _if_args(stmt["args"])
        block, ctx = self.stack[-1]
        try:
            self._analyze(
                fname=None,
                stmt=stmt,
                term=term,
                ctx=ctx,
                strict=False,
                check_ctx=False,
                check_args=True,
            )
        except self._error:
            self.ok = False
            return
        block.append(stmt)
        if term == "{":
            stmt["block"] = []
            self.stack.append((stmt["block"], self._enter(stmt, ctx)))


def _if_args(args: list[str]) -> None:
    """An `if` condition without its parentheses, as crossplane reports it."""
    if not args or not args[0].startswith("(") or not args[-1].endswith(")"):
        return
    args[0] = args[0][1:].lstrip()
    args[-1] = args[-1][:-1].rstrip()
    first = 0 if args[0] else 1
    last = len(args) - (0 if args[-1] else 1)
    args[:] = args[first:last]


@functools.lru_cache(maxsize=4096)
def scan(text: str) -> Scan:
    """A file's statements, for `edit` and for `config`, from one pass over its text (cached by
    text: a plan reads each file once to parse it and again for its edits; callers only read
    the result)."""
    statements: list[Statement] = []
    parse = _Parse(text)
    plain = _PLAIN.match
    count = text.count
    line, counted, position = 1, 0, 0
    current: Statement | None = None
    while True:
        found = plain(text, position) if current is None else None
        if found is not None:
            position = found.end()
            kind = found.lastgroup
            if kind == "close":
                if parse.ok:
                    parse.close_block()
            elif kind == "term":  # the last group a whole statement closes
                first, last = found.span("name")
                line += count("\n", counted, first)
                counted = first
                name = found.group("name")
                statements.append(
                    Statement(Token(name, first, last, line, False), position, None, text)
                )
                if parse.ok:
                    parse.whole(name, line, found.group("args").split(), found.group("term"))
            continue
        # Not a plain statement (or inside one that is not): one token at a time.
        match = _TOKEN.match(text, position)
        if match is None:
            break
        position = match.end()
        kind = match.lastgroup
        first, last = match.span(match.lastindex or 0)
        line += count("\n", counted, first)
        counted = first
        token = Token(text[first:last], first, last, line, kind == "quoted")
        if current is None:
            if kind == "comment":
                continue
            if kind == "quoted" or token.text != "}":
                current = Statement(token, token.end, [])
                statements.append(current)
                if parse.ok:
                    parse.start(token)
            elif parse.ok:
                parse.close_block()
        elif kind == "punct":
            current.end = token.end if token.text != "}" else token.start
            current = None
            if parse.ok:
                parse.end(token.text)
        elif kind == "comment":
            # crossplane reports a comment among the arguments as a statement of its own.
            parse.ok = False
        else:
            current.args.append(token)
            if parse.ok:
                parse.arg(token)
    if current is not None or len(parse.stack) != 1:
        parse.ok = False
    return Scan(statements, parse.root if parse.ok else None)


def statements(text: str) -> list[Statement]:
    """Every statement of a file, in document order (blocks before their contents)."""
    return scan(text).statements
