"""`lexer.scan` reads a file into the statements crossplane reports for it, or leaves the file to
crossplane: checked against crossplane itself on every file of the Nginx corpus, on the files
of the benchmark's generated tree and on the corners of crossplane's reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.nginx import write_tree
from remediate.providers.nginx.config import NginxConfigError, _crossplane_parse
from remediate.providers.nginx.lexer import Token, scan, tokens

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "nginx"
NOT_CONFIG = {"SOURCE", "LICENSE", "case.json"}


def crossplane(text: str) -> list[dict[str, Any]] | str:
    """crossplane's statements for `text`, or its error."""
    try:
        return _crossplane_parse("/etc/nginx/test.conf", text)
    except NginxConfigError as error:
        return str(error)


def corpus_texts() -> list[tuple[str, str]]:
    found = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.name in NOT_CONFIG or path.suffix in (".html", ".md"):
            continue
        if path.suffix in (".pem", ".crt", ".key"):
            continue
        found.append((str(path.relative_to(CORPUS)), path.read_text(encoding="utf-8")))
    return found


CORPUS_TEXTS = corpus_texts()


def test_the_corpus_has_configuration_files() -> None:
    assert len(CORPUS_TEXTS) >= 15


@pytest.mark.parametrize(("name", "text"), CORPUS_TEXTS, ids=[n for n, _ in CORPUS_TEXTS])
def test_every_corpus_file_reads_as_crossplane_reads_it(name: str, text: str) -> None:
    found = scan(text).parsed
    assert found is not None, f"{name} was left to crossplane"
    assert found == crossplane(text)


def test_the_benchmark_tree_reads_as_crossplane_reads_it(tmp_path: Path) -> None:
    conf = write_tree(tmp_path, server_blocks=30, files=3)
    for path in [conf, *sorted((tmp_path / "sites").iterdir())]:
        text = path.read_text(encoding="utf-8")
        assert scan(text).parsed == crossplane(text)


READ_HERE = [
    "a 'b c';",
    'add_header X "a\\"b" always;',
    "a '\\'' b;",
    "a '\\\\' b;",
    'a "x\\ny" "";',
    'a "x"y z;',
    'a x"y z";',
    "a#b c;",
    "# c\na;",
    "a; # c",
    '"a b" c;',
    "'a' {}",
    "x{y;}",
    "a \\\n b;",
    "\ufeffa;",
    "a\x0bb;",
    "a 'x\ny' b;\n\n\nc;",
    "location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; }",
    "if ($request_method = POST ) { return 405; }",
    "if ( $a ) { }",
    "if ($a) { return 404; }",
    "http { map $a $b { default 1; '' ''; } types { text/html html; } }",
    "upstream u { server 127.0.0.1 weight=2; keepalive 8; }",
]
LEFT_TO_CROSSPLANE = [
    "a b # c\n;",  # a comment among the arguments: crossplane makes it a statement
    "a {",  # unbalanced braces
    "a }",  # a statement ended by `}`
    "}",
    "a;}",
    "a 'b",  # an unterminated quote
    'a "b\\"',
    "a b\\",  # a backslash at the end of the file
    "a b",  # no terminator
    ";",
    "{}",
    "listen;",  # crossplane's argument checks
    "ssl maybe;",
    "server { listen 80 }",
    "a\tb\r\nc;",  # read with universal newlines
    "set $a ${b}c;",  # crossplane's `${` reading
    "location / { content_by_lua_block { ngx.say('x') } }",  # crossplane's Lua extension
    "if () {}",
]


@pytest.mark.parametrize("text", READ_HERE)
def test_what_it_reads_is_what_crossplane_reads(text: str) -> None:
    found = scan(text).parsed
    assert found is not None
    assert found == crossplane(text)


@pytest.mark.parametrize("text", LEFT_TO_CROSSPLANE)
def test_corners_are_left_to_crossplane(text: str) -> None:
    assert scan(text).parsed is None


def token_by_token(text: str) -> list[tuple[Token, list[Token], int]]:
    """Each statement (name, arguments, end offset) from nginx's tokens one at a time: what
    `scan`, which reads plain statements whole, must find. A statement the text leaves
    unterminated ends where its name does; one cut short by `}` ends before it."""
    found: list[tuple[Token, list[Token], int]] = []
    name: Token | None = None
    args: list[Token] = []
    for token in tokens(text, comments=True):
        comment = not token.quoted and token.text.startswith("#")
        punct = not token.quoted and token.text in (";", "{", "}")
        if name is None:
            if not comment and not (punct and token.text == "}"):
                name, args = token, []
        elif punct:
            found.append((name, args, token.end if token.text != "}" else token.start))
            name = None
        elif not comment:
            args.append(token)
    if name is not None:
        found.append((name, args, name.end))
    return found


STATEMENT_CORNERS = [
    "location ~ ^/x$ { return 200; }",
    "location ~ ^/x${ a; }",
    "set $a ${b}c;",
    "a b\\ c;",
    "a \\; b;",
    "a b$ ;",
    "a\n\n  b\n c\n;\n\nd {\n}\n",
    "a b;c d{e f;}",
    "a 'b' c;",
    "a b",
    "  ",
]


@pytest.mark.parametrize(
    "text", [t for _, t in CORPUS_TEXTS] + READ_HERE + LEFT_TO_CROSSPLANE + STATEMENT_CORNERS
)
def test_statements_are_where_the_tokens_put_them(text: str) -> None:
    found = [(s.name, s.args, s.end) for s in scan(text).statements]
    assert found == token_by_token(text)
