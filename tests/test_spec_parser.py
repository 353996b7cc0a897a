"""The spec parser accepts what isolationtester accepts and names the line of each mistake.

Specs are written with `lines(...)`, so line N of a spec is argument N and error line
numbers can be read straight off the test.
"""

from __future__ import annotations

import pytest

from lab.errors import UsageError
from lab.spec.parser import (
    Invariant,
    PermutationStep,
    SpecError,
    SpecSession,
    SpecStep,
    load,
    parse,
)


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


def error(text: str, path: str = "t.spec") -> str:
    with pytest.raises(SpecError) as info:
        parse(text, path)
    return str(info.value)


TWO_SESSIONS = lines(
    "session s1",            # 1
    "step a { SELECT 1; }",  # 2
    "step b { SELECT 2; }",  # 3
    "session s2",            # 4
    "step c { SELECT 3; }",  # 5
    "step d { SELECT 4; }",  # 6
)


# -- what parses ----------------------------------------------------------------------

def test_a_full_spec() -> None:
    spec = parse(lines(
        "# Two sessions read a counter, then both write it back.",  # 1
        "setup { CREATE TABLE c (n int); }",                        # 2
        "setup { INSERT INTO c VALUES (0); }",                      # 3
        "teardown { DROP TABLE c; }",                               # 4
        "",                                                         # 5
        'session "s1"',                                             # 6
        "setup { BEGIN; }",                                         # 7
        "step r1 { SELECT n FROM c; }",                             # 8
        "step w1 { UPDATE c SET n = n + 1; }",                      # 9
        "step c1 { COMMIT; }",                                      # 10
        "teardown { ROLLBACK; }",                                   # 11
        "",                                                         # 12
        "session s2",                                               # 13
        "step r2 { SELECT n FROM c; }",                             # 14
        "step w2 { UPDATE c SET n = n + 1; }",                      # 15
        "",                                                         # 16
        "permutation r1 r2 w1 c1 w2",                               # 17
        'permutation "r1" w1 c1 r2 w2',                             # 18
        'invariant "lost update" { SELECT n FROM c WHERE n <> 2; }',  # 19
    ), "specs/lost-update.spec")
    assert spec.name == "lost-update"
    assert spec.setup == ("CREATE TABLE c (n int);", "INSERT INTO c VALUES (0);")
    assert spec.teardown == "DROP TABLE c;"
    assert spec.sessions == (
        SpecSession("s1", (SpecStep("r1", "SELECT n FROM c;", "s1", 8),
                           SpecStep("w1", "UPDATE c SET n = n + 1;", "s1", 9),
                           SpecStep("c1", "COMMIT;", "s1", 10)),
                    setup="BEGIN;", teardown="ROLLBACK;"),
        SpecSession("s2", (SpecStep("r2", "SELECT n FROM c;", "s2", 14),
                           SpecStep("w2", "UPDATE c SET n = n + 1;", "s2", 15))),
    )
    assert spec.permutations == (
        tuple(PermutationStep(n) for n in ["r1", "r2", "w1", "c1", "w2"]),
        tuple(PermutationStep(n) for n in ["r1", "w1", "c1", "r2", "w2"]),
    )
    assert spec.invariants == (Invariant("lost update", "SELECT n FROM c WHERE n <> 2;"),)


def test_the_minimum_is_one_session_with_one_step() -> None:
    spec = parse("session s step a {}")
    assert spec.name == "<spec>"
    assert spec.setup == () and spec.teardown is None
    assert spec.sessions == (SpecSession("s", (SpecStep("a", "", "s", 1),)),)
    assert spec.permutations == () and spec.invariants == ()


def test_sql_loses_spaces_next_to_the_braces_but_keeps_newlines() -> None:
    # specscanner.l: "{"{space}* and {space}*"}" with space = [ \t\r\f]; a multi-line block
    # keeps its first and last newline, as isolationtester prints it.
    spec = parse(lines(
        "session s",
        "step one {\t  SELECT 1;  \t}",
        "step multi {",
        "  UPDATE t  ",
        "     SET n = 1;",
        "  }",
        "step inner { a  \t  b }",
    ))
    one, multi, inner = spec.sessions[0].steps
    assert one.sql == "SELECT 1;"
    assert multi.sql == "\n  UPDATE t  \n     SET n = 1;\n"
    assert inner.sql == "a  \t  b"
    assert (one.line, multi.line, inner.line) == (2, 3, 7)


def test_sql_is_verbatim_hash_and_open_brace_included() -> None:
    # "#" is not a comment inside SQL, and "{" does not nest: the first "}" ends the block.
    spec = parse(lines(
        "session s",
        "step a { SELECT '#not a comment', '{' || 'x'; }  # a comment",
    ))
    assert spec.sessions[0].steps[0].sql == "SELECT '#not a comment', '{' || 'x';"


def test_a_close_brace_inside_sql_ends_the_block() -> None:
    # isolationtester: "There is no way to include a "}" character in an <SQL> block."
    assert error(lines(
        "session s",
        "step a { SELECT '}'; }",
    )) == "t.spec:2: unexpected character \"'\""


def test_comments_run_to_the_end_of_the_line() -> None:
    spec = parse(lines(
        "# header",
        "session s # the only session",
        "step a { SELECT 1; } # first",
        "#step b { SELECT 2; }",
        "permutation a # the only permutation",
    ))
    assert [s.name for s in spec.sessions[0].steps] == ["a"]
    assert spec.permutations == ((PermutationStep("a"),),)


def test_names_plain_and_quoted() -> None:
    spec = parse(lines(
        'session "session one"',
        'step "a""b" {}',
        'step "step" {}',        # a keyword, quoted
        "step _x$1 {}",
        "step été {}",           # non-ASCII letters, like specscanner.l's \\200-\\377
        "step setup2 {}",        # a keyword prefix is still a name
        "step Foo {}",
        "step foo {}",           # no case folding: Foo and foo differ
        'permutation "a""b" "step" _x$1 été setup2 Foo foo "step"',
    ))
    session = spec.sessions[0]
    assert session.name == "session one"
    assert [s.name for s in session.steps] == ['a"b', "step", "_x$1", "été", "setup2", "Foo",
                                               "foo"]
    assert [p.name for p in spec.permutations[0]] == ['a"b', "step", "_x$1", "été", "setup2",
                                                      "Foo", "foo", "step"]


def test_plain_and_quoted_spellings_are_the_same_name() -> None:
    assert error(lines(
        "session s",
        "step FOO {}",
        'step "FOO" {}',
    )) == "t.spec:3: duplicate step name 'FOO' (first defined at line 2)"


def test_markers() -> None:
    spec = parse(TWO_SESSIONS + lines(
        "permutation a(*) c(a) b d(a, b) c (*, b)",
    ))
    assert spec.permutations[0] == (
        PermutationStep("a", ("*",)),
        PermutationStep("c", ("a",)),
        PermutationStep("b"),
        PermutationStep("d", ("a", "b")),
        PermutationStep("c", ("*", "b")),
    )


def test_a_marker_may_name_a_later_step() -> None:
    spec = parse(TWO_SESSIONS + "permutation a(d) c d\n")
    assert spec.permutations[0][0] == PermutationStep("a", ("d",))


def test_permutations_may_reorder_repeat_and_skip_steps() -> None:
    # check_testspec() only links names to steps: order, repeats and gaps are allowed.
    spec = parse(TWO_SESSIONS + "permutation b a a d\n")
    assert [p.name for p in spec.permutations[0]] == ["b", "a", "a", "d"]


def test_a_permutation_may_span_lines() -> None:
    spec = parse(TWO_SESSIONS + lines(
        "permutation a",
        "  c(a)   # comment between entries",
        "  b",
        "permutation d",
    ))
    assert [[p.name for p in perm] for perm in spec.permutations] == [["a", "c", "b"], ["d"]]


def test_invariants_go_anywhere_at_top_level() -> None:
    spec = parse(lines(
        'invariant first { SELECT 1; }',
        "setup { CREATE TABLE t (); }",
        'invariant "second one" { SELECT 2; }',
        "session s1 step a {}",
        'invariant "third" {',
        "  SELECT 3;",
        "}",
        "session s2 step b {}",
        "permutation a b",
        'invariant "fourth" { SELECT 4; }',
    ))
    assert spec.invariants == (
        Invariant("first", "SELECT 1;"),
        Invariant("second one", "SELECT 2;"),
        Invariant("third", "\n  SELECT 3;\n"),
        Invariant("fourth", "SELECT 4;"),
    )
    assert [s.name for s in spec.sessions] == ["s1", "s2"]


def test_line_numbers_count_newlines_inside_sql() -> None:
    spec = parse(lines(
        "setup {",
        "",
        "}",
        "session s step a {",
        "}",
        "step b {}",
    ))
    assert [s.line for s in spec.sessions[0].steps] == [4, 6]


# -- load -----------------------------------------------------------------------------

def test_load_reads_a_file_and_names_the_spec_after_it(tmp_path) -> None:
    path = tmp_path / "write-skew.spec"
    path.write_text("\ufeffsession s step a { SELECT 1; }\n", encoding="utf-8")
    spec = load(path)
    assert spec.name == "write-skew"
    assert spec.sessions[0].steps[0].sql == "SELECT 1;"


def test_load_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "bad.spec"
    path.write_text("session s\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"^.*bad\.spec:1: session 's' has no steps$"):
        load(str(path))


def test_load_of_a_missing_file(tmp_path) -> None:
    path = tmp_path / "missing.spec"
    with pytest.raises(SpecError) as info:
        load(path)
    assert str(info.value) == f"cannot read {path}: No such file or directory"


def test_load_of_a_directory_or_non_utf8_file(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"^cannot read "):
        load(tmp_path)
    path = tmp_path / "latin1.spec"
    path.write_bytes(b"session s step a { SELECT '\xe9'; }\n")
    with pytest.raises(SpecError, match=r"^cannot read .*latin1\.spec: .*utf-8"):
        load(path)


def test_spec_error_is_a_usage_error() -> None:
    assert issubclass(SpecError, UsageError)
    assert SpecError.exit_code == 2


# -- lexical errors -------------------------------------------------------------------

def test_unclosed_brace_names_the_line_it_opened() -> None:
    assert error(lines(
        "session s",
        "step a { SELECT 1; }",
        "step b {",
        "  SELECT 2;",
        "",
    )) == "t.spec:3: '{' is never closed: no '}' before the end of the file"


def test_unterminated_quoted_name() -> None:
    assert error('session s\nstep "a {}') == "t.spec:2: unterminated quoted name"
    assert error(lines('session "s', '"')) == (
        "t.spec:1: quoted name runs past the end of the line")


def test_unexpected_characters() -> None:
    assert error(lines("session s", "step a {}", "}")) == "t.spec:3: unexpected character '}'"
    assert error(lines("session s", "step a-b {}")) == "t.spec:2: unexpected character '-'"


# -- syntax errors --------------------------------------------------------------------

def test_missing_names() -> None:
    assert error("\nsession { }") == (
        "t.spec:2: expected a session name after 'session', found a { SQL } block")
    assert error(lines("session s", "step", "{ }")) == (
        "t.spec:3: expected a step name after 'step', found a { SQL } block")
    assert error("session 1s step a {}") == (
        "t.spec:1: expected a session name after 'session', found number 1")


def test_a_keyword_needs_quotes_to_be_a_name() -> None:
    assert error(lines("session s", "step step {}")) == (
        "t.spec:2: expected a step name after 'step', found 'step'"
        " (quote a keyword to use it as a name)")


def test_missing_open_brace() -> None:
    assert error(lines("session s", "step a", "  SELECT 1;")) == (
        "t.spec:3: expected '{' to open the SQL of step 'a', found name 'SELECT'")
    assert error(lines("setup { }", "teardown", "session s")) == (
        "t.spec:3: expected '{' to open the SQL of the global teardown, found 'session'")
    assert error(lines("session s", "step a {}", "teardown")) == (
        "t.spec:4: expected '{' to open the SQL of the teardown of session 's',"
        " found the end of the file")


def test_parts_out_of_order() -> None:
    assert error(lines("session s", "step a {}", "setup {}")) == (
        "t.spec:3: unexpected 'setup': global setup comes before the teardown and the"
        " sessions, a session's setup before its steps")
    assert error(lines("teardown {}", "setup {}", "session s step a {}")) == (
        "t.spec:2: unexpected 'setup': global setup comes before the teardown and the"
        " sessions, a session's setup before its steps")
    assert error(lines("teardown {}", "teardown {}")) == (
        "t.spec:2: unexpected 'teardown': the one global teardown comes before the sessions,"
        " a session's teardown after its steps")
    assert error(TWO_SESSIONS + lines("permutation a", "session s3 step e {}")) == (
        "t.spec:8: unexpected 'session': sessions come before the permutations")
    assert error(lines("permutation a", "session s step a {}")) == (
        "t.spec:1: unexpected 'permutation': a permutation needs a session before it")
    assert error(lines("session s", "step a {}", "teardown {}", "step b {}")) == (
        "t.spec:4: unexpected 'step': a step belongs in a session, before the session's"
        " teardown")
    assert error(lines("session s", "step a {}", "SETUP {}")) == (
        "t.spec:3: unexpected name 'SETUP': expected setup, teardown, session, permutation"
        " or invariant")
    assert error("session s step a {} (") == (
        "t.spec:1: unexpected '(': expected setup, teardown, session, permutation or invariant")


def test_empty_permutation() -> None:
    assert error(TWO_SESSIONS + "permutation\n") == (
        "t.spec:7: permutation lists no steps (found the end of the file)")
    assert error(TWO_SESSIONS + "permutation (a)\n") == (
        "t.spec:7: permutation lists no steps (found '(')")


def test_bad_marker_syntax() -> None:
    assert error(TWO_SESSIONS + "permutation a c()\n") == (
        "t.spec:7: expected a step name or '*' in the marker of step 'c', found ')'")
    assert error(TWO_SESSIONS + "permutation a c(a b)\n") == (
        "t.spec:7: expected ',' or ')' in the marker of step 'c', found name 'b'")
    assert error(TWO_SESSIONS + lines("permutation a c(a,")) == (
        "t.spec:8: expected a step name or '*' in the marker of step 'c', found the end of"
        " the file")
    assert error(TWO_SESSIONS + "permutation a c(a notices 1)\n") == (
        "t.spec:7: the 'notices' marker is not supported")


# -- semantic errors ------------------------------------------------------------------

def test_empty_spec_has_no_sessions() -> None:
    assert error("") == "t.spec:1: no sessions: a spec needs at least one session"
    assert error(lines("# only a comment", "setup { SELECT 1; }", "")) == (
        "t.spec:4: no sessions: a spec needs at least one session")
    assert error('invariant "x" { SELECT 1; }') == (
        "t.spec:1: no sessions: a spec needs at least one session")


def test_session_without_steps() -> None:
    assert error(lines("session s1", "session s2 step a {}")) == (
        "t.spec:1: session 's1' has no steps")
    assert error(lines("session s2 step a {}", "session s1", "  setup { BEGIN; }",
                       "  teardown { COMMIT; }")) == "t.spec:2: session 's1' has no steps"
    assert error(lines("session s", "setup {}", "setup {}", "step a {}")) == (
        "t.spec:1: session 's' has no steps")


def test_duplicate_step_names_across_sessions() -> None:
    assert error(lines(
        "session s1",
        "step a {}",
        "session s2",
        "step b {}",
        "step a {",
        "}",
    )) == "t.spec:5: duplicate step name 'a' (first defined at line 2)"


def test_duplicate_session_names() -> None:
    assert error(lines(
        "session s1 step a {}",
        "",
        'session "s1" step b {}',
    )) == "t.spec:3: duplicate session name 's1' (first used at line 1)"


def test_unknown_step_in_a_permutation() -> None:
    assert error(TWO_SESSIONS + lines("permutation a c", "permutation a", "  x d")) == (
        "t.spec:9: permutation names unknown step 'x'; steps are: a b c d")


def test_unknown_step_in_a_marker() -> None:
    assert error(TWO_SESSIONS + "permutation a c(a, zz)\n") == (
        "t.spec:7: marker of step 'c' names unknown step 'zz'")


def test_a_marker_must_name_a_step_of_the_same_permutation() -> None:
    # check_testspec() searches only the current permutation for the blocking step.
    assert error(TWO_SESSIONS + lines("permutation a b c d", "permutation a c(b)")) == (
        "t.spec:8: marker of step 'c' names step 'b', which this permutation does not run")


def test_a_marker_cannot_name_a_step_of_its_own_session() -> None:
    assert error(TWO_SESSIONS + lines("permutation a c", "  b(c, a)")) == (
        "t.spec:8: step 'b' cannot be blocked by 'a': both are in session 's1'")
    assert error(TWO_SESSIONS + "permutation a(a)\n") == (
        "t.spec:7: step 'a' cannot be blocked by 'a': both are in session 's1'")


def test_invariant_errors() -> None:
    assert error(lines("session s step a {}", "invariant { SELECT 1; }")) == (
        "t.spec:2: expected a label after 'invariant', such as \"lost update\","
        " found a { SQL } block")
    assert error(lines("session s step a {}", 'invariant "x"', "session t step b {}")) == (
        "t.spec:3: expected '{' to open the SQL of invariant 'x', found 'session'")
    assert error(lines("session s step a {}", 'invariant "x" { SELECT 1; }',
                       'invariant "x" { SELECT 2; }')) == (
        "t.spec:3: duplicate invariant label 'x'")
    assert error(lines("session s step a {}", 'invariant "x" {', "}")) == (
        "t.spec:2: invariant 'x' has no SQL")
