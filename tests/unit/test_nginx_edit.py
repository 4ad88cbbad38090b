"""The Nginx text editor on its own: its lexer's offsets, locating statements, each kind of edit,
and applying edits so that everything outside them stays byte for byte."""

from __future__ import annotations

import pytest

from remediate.errors import RemediateError
from remediate.providers.nginx import edit, lexer
from remediate.providers.nginx.config import Directive

PATH = "/etc/nginx/nginx.conf"


def directive(
    name: str, line: int, ordinal: int, *args: str, children: list[Directive] | None = None
) -> Directive:
    return Directive(name, list(args), PATH, line, ordinal, children)


def words(text: str) -> list[tuple[str, int, int, int, bool]]:
    return [(t.text, t.start, t.end, t.line, t.quoted) for t in lexer.tokens(text)]


def test_tokens_carry_offsets_lines_and_quoting() -> None:
    text = 'a \'b c\';\n# note ; {\nd "e\\"f" {\n}\n'
    assert words(text) == [
        ("a", 0, 1, 1, False),
        ("'b c'", 2, 7, 1, True),
        (";", 7, 8, 1, False),
        ("d", 20, 21, 3, False),
        ('"e\\"f"', 22, 28, 3, True),
        ("{", 29, 30, 3, False),
        ("}", 31, 32, 4, False),
    ]


def test_a_quoted_string_over_two_lines_counts_its_newline() -> None:
    assert words("a 'x\ny' b;") == [
        ("a", 0, 1, 1, False),
        ("'x\ny'", 2, 7, 1, True),
        ("b", 8, 9, 2, False),
        (";", 9, 10, 2, False),
    ]


def test_variables_in_braces_and_escapes_stay_in_one_word() -> None:
    assert [t.text for t in lexer.tokens("set $a ${b}c\\;d;")] == ["set", "$a", "${b}c\\;d", ";"]
    assert [t.text for t in lexer.tokens("x{y;}")] == ["x", "{", "y", ";", "}"]
    assert [t.text for t in lexer.tokens("a\tb\r\nc")] == ["a", "b", "c"]


def test_an_unterminated_quote_ends_at_the_end_of_the_text() -> None:
    [first, second] = list(lexer.tokens("a 'bc"))
    assert (second.text, second.start, second.end, second.quoted) == ("'bc", 2, 5, True)
    assert first.text == "a"


def test_statements_in_document_order_with_their_ends() -> None:
    text = "events {}\nhttp {\n    ssl_protocols TLSv1 TLSv1.2;\n}\n"
    found = lexer.statements(text)
    assert [(s.name.text, [a.text for a in s.args], s.start, s.end) for s in found] == [
        ("events", [], 0, 8),
        ("http", [], 10, 16),
        ("ssl_protocols", ["TLSv1", "TLSv1.2"], 21, 49),
    ]
    assert text[found[2].start : found[2].end] == "ssl_protocols TLSv1 TLSv1.2;"


def test_a_quoted_name_starts_a_statement_and_a_closing_brace_does_not() -> None:
    found = lexer.statements("} 'a' b;")
    assert [s.name.text for s in found] == ["'a'"]


FILE = (
    "http {\n"
    "    ssl_protocols TLSv1 TLSv1.2; # keep\n"
    "    server {\n"
    "        listen 443 ssl;\n"
    '        add_header X "a b";\n'
    "        location / { proxy_pass http://b; }\n"
    "    }\n"
    "}\n"
)
PROTOCOLS = directive("ssl_protocols", 2, 1, "TLSv1", "TLSv1.2")
LISTEN = directive("listen", 4, 3, "443", "ssl")
HEADER = directive("add_header", 5, 4, "X", "a b")
PROXY = directive("proxy_pass", 6, 6, "http://b")
LOCATION = directive("location", 6, 5, "/", children=[PROXY])
SERVER = directive("server", 3, 2, children=[LISTEN, HEADER, LOCATION])
HTTP = directive("http", 1, 0, children=[PROTOCOLS, SERVER])


def apply_one(change: edit.Edit, text: str = FILE) -> str:
    return edit.apply({PATH: text}, [change])[PATH]


def test_replace_args_keeps_the_comment_and_everything_else() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.replace_args(PROTOCOLS, "TLSv1.2 TLSv1.3"))
    assert after == FILE.replace("TLSv1 TLSv1.2; # keep", "TLSv1.2 TLSv1.3; # keep")


def test_replace_args_keeps_the_quotes_of_a_single_quoted_argument() -> None:
    text = "ssl_ciphers 'DEFAULT:@SECLEVEL=0';\n"
    ciphers = directive("ssl_ciphers", 1, 0, "DEFAULT:@SECLEVEL=0")
    tree = edit.Tree({PATH: text})
    assert apply_one(tree.replace_args(ciphers, "HIGH"), text) == "ssl_ciphers 'HIGH';\n"
    assert apply_one(tree.replace_args(ciphers, "A B"), text) == "ssl_ciphers A B;\n"


def test_replace_args_of_a_statement_without_arguments_adds_them() -> None:
    text = "http2;\n"
    tree = edit.Tree({PATH: text})
    assert apply_one(tree.replace_args(directive("http2", 1, 0), "on"), text) == "http2 on;\n"


def test_replace_arg_changes_one_argument() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.replace_arg(HEADER, 1, "c"))
    assert after == FILE.replace('add_header X "a b";', "add_header X c;")


def test_add_param_goes_after_the_named_argument_or_at_the_end() -> None:
    tree = edit.Tree({PATH: FILE})
    assert apply_one(tree.add_param(LISTEN, "http2", after="443")) == FILE.replace(
        "listen 443 ssl;", "listen 443 http2 ssl;"
    )
    assert apply_one(tree.add_param(LISTEN, "http2", after="missing")) == FILE.replace(
        "listen 443 ssl;", "listen 443 ssl http2;"
    )
    text = "listen;\n"
    bare = edit.Tree({PATH: text}).add_param(directive("listen", 1, 0), "80")
    assert apply_one(bare, text) == "listen 80;\n"


def test_insert_after_puts_new_lines_at_the_statement_indentation() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.insert_after(LISTEN, ["http2 on;", "", "a b;"]))
    assert after == FILE.replace(
        "        listen 443 ssl;\n", "        listen 443 ssl;\n        http2 on;\n\n        a b;\n"
    )


def test_insert_after_a_statement_with_a_trailing_comment_goes_to_the_next_line() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.insert_after(PROTOCOLS, ["ssl_ciphers HIGH;"]))
    assert after == FILE.replace("# keep\n", "# keep\n    ssl_ciphers HIGH;\n")


def test_insert_after_on_a_one_line_block_stays_inline() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.insert_after(PROXY, ["  proxy_http_version 1.1;", "x y;"]))
    assert "location / { proxy_pass http://b; proxy_http_version 1.1; x y; }\n" in after


def test_insert_after_the_last_line_without_a_newline() -> None:
    text = "a b;"
    tree = edit.Tree({PATH: text})
    assert apply_one(tree.insert_after(directive("a", 1, 0, "b"), ["c d;"]), text) == "a b;\nc d;\n"


def test_insert_first_uses_the_indentation_of_the_first_child() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.insert_first(SERVER, ["http2 on;"]))
    assert after == FILE.replace("    server {\n", "    server {\n        http2 on;\n")
    tabbed = "http {\n\tserver {\n\t}\n}\n"
    server = directive("server", 2, 1)
    tree = edit.Tree({PATH: tabbed})
    assert apply_one(tree.insert_first(server, ["x;"]), tabbed) == (
        "http {\n\tserver {\n\t\tx;\n\t}\n}\n"
    )


def test_insert_first_in_an_empty_block_indents_one_step_in_the_files_style() -> None:
    spaced = "http {\n  server {\n  }\n}\n"
    tree = edit.Tree({PATH: spaced})
    assert apply_one(tree.insert_first(directive("server", 2, 1), ["x;"]), spaced) == (
        "http {\n  server {\n      x;\n  }\n}\n"
    )
    assert tree.unit(PATH) == "    "
    assert edit.Tree({PATH: "a {\n\tb;\n\tc;\n  d;\n}\n"}).unit(PATH) == "\t"


def test_insert_first_ignores_children_from_other_files_and_on_the_same_line() -> None:
    text = "http { a b;\n}\n"
    other = Directive("include", ["x"], "/other.conf", 1, 0)
    inline = directive("a", 1, 1, "b")
    tree = edit.Tree({PATH: text})
    http = directive("http", 1, 0, children=[other, inline])
    assert apply_one(tree.insert_first(http, ["c;"]), text) == "http { c; a b;\n}\n"


def test_insert_before_puts_lines_and_a_blank_one_above_the_statement() -> None:
    tree = edit.Tree({PATH: FILE})
    after = apply_one(tree.insert_before(SERVER, ["map $a $b {", "}"]))
    assert after == FILE.replace("    server {\n", "    map $a $b {\n    }\n\n    server {\n")
    # Something before it on the same line: the new statement goes inline, just before it.
    inline = apply_one(tree.insert_before(PROXY, ["x;"]))
    assert [s.name.text for s in lexer.statements(inline)][-3:] == ["location", "x", "proxy_pass"]
    assert inline.count("\n") == FILE.count("\n")


def test_text_is_the_statement_as_written() -> None:
    assert edit.Tree({PATH: FILE}).text(HEADER) == 'add_header X "a b";'


def test_a_statement_that_is_not_where_the_parser_said_is_an_error() -> None:
    tree = edit.Tree({PATH: FILE})
    for wrong in (
        directive("ssl_protocols", 3, 1),
        directive("ssl_ciphers", 2, 1),
        directive("ssl_protocols", 2, 99),
    ):
        with pytest.raises(RemediateError) as error:
            tree.statement(wrong)
        assert str(error.value) == (
            f"{PATH}:{wrong.line}: cannot locate the {wrong.name} statement for an edit"
        )


def test_a_quoted_statement_name_is_located_unquoted() -> None:
    text = "'map' $a $b {\n}\n"
    tree = edit.Tree({PATH: text})
    assert tree.statement(directive("map", 1, 0, "$a", "$b")).end == 13


def test_apply_keeps_insertion_order_counts_identical_edits_once_and_skips_no_ops() -> None:
    text = "abc"
    first = edit.Edit(PATH, 1, 1, "X")
    second = edit.Edit(PATH, 1, 1, "Y")
    replace = edit.Edit(PATH, 2, 3, "Z")
    assert edit.apply({PATH: text}, [replace, first, second, first]) == {PATH: "aXYbZ"}
    assert edit.apply({PATH: text, "/b": "q"}, [edit.Edit(PATH, 0, 1, "a")]) == {}


def test_overlapping_edits_are_an_error() -> None:
    with pytest.raises(RemediateError, match=f"{PATH}: overlapping edits at offset 1"):
        edit.apply({PATH: "abcd"}, [edit.Edit(PATH, 0, 2, "x"), edit.Edit(PATH, 1, 3, "y")])


def test_edits_to_several_files() -> None:
    files = {PATH: "a", "/b": "b"}
    result = edit.apply(files, [edit.Edit("/b", 1, 1, "!"), edit.Edit(PATH, 0, 0, "!")])
    assert result == {"/b": "b!", PATH: "!a"}


def test_unified_diff_names_the_file() -> None:
    assert edit.unified_diff("/f", "a\nb\n", "a\nc\n") == (
        "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    )
    assert edit.unified_diff("/f", "a\n", "a\n") == ""


def test_statements_after_an_escaped_newline_keep_crossplanes_line_numbers() -> None:
    # crossplane counts every newline, an escaped one inside a word too: the statement after it
    # must carry the same line, or no edit could locate it.
    text = "set $a x\\\ny;\nreturn 200;\n"
    tree = edit.Tree({PATH: text})
    found = tree.statement(directive("return", 3, 1, "200"))
    assert text[found.start : found.end] == "return 200;"


def test_an_escaped_dollar_before_a_brace_is_read_as_crossplane_reads_it() -> None:
    assert words("a \\${b c};") == [
        ("a", 0, 1, 1, False),
        ("\\${b c}", 2, 9, 1, False),
        (";", 9, 10, 1, False),
    ]


def test_lines_inserted_before_a_statement_go_above_the_comment_on_top_of_it() -> None:
    text = "http {\n    # the status page\n    # (local only)\n    server {\n    }\n}\n"
    server = directive("server", 4, 1)
    new = edit.apply(
        {PATH: text}, [edit.Tree({PATH: text}).insert_before(server, ["map a $b {", "}"])]
    )
    assert new[PATH] == (
        "http {\n    map a $b {\n    }\n\n    # the status page\n    # (local only)\n"
        "    server {\n    }\n}\n"
    )
