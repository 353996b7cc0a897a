"""What a spec session hears beside its results, and the waits and set-ups isolationtester
knows: NOTICEs and NOTIFYs as typed trace events (text, timeline, isolationtester output),
safe-snapshot waits, setup blocks outside a transaction, session teardown results."""

from __future__ import annotations

from pathlib import Path

from lab import cli
from lab.plot import timeline
from lab.runner import Run
from lab.spec.parser import parse
from lab.spec.scenario import to_scenario

TRIGGER = """
setup {
  CREATE TABLE noisy (k int PRIMARY KEY, v text);
  INSERT INTO noisy VALUES (1, 'one');
  CREATE FUNCTION noisy_say() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE NOTICE 'updating %', OLD.v; RETURN NEW; END $$;
  CREATE TRIGGER noisy_say BEFORE UPDATE ON noisy FOR EACH ROW EXECUTE FUNCTION noisy_say();
  CREATE FUNCTION say(t text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN RAISE WARNING 'said %', t USING DETAIL = 'in say()'; RETURN t; END $$;
}
teardown { DROP TABLE noisy; DROP FUNCTION noisy_say(); DROP FUNCTION say(text); }
session s1
step u1 { BEGIN; UPDATE noisy SET v = 'by s1' WHERE k = 1; }
step c1 { COMMIT; }
session s2
step u2 { UPDATE noisy SET v = 'by s2' WHERE k = 1; }
step two { SELECT 1 AS a; SELECT say('b') AS b; }
teardown { SELECT v FROM noisy; }
"""

NOTIFY = """
session listener
step listen { LISTEN c1; }
step check { SELECT 1 AS x; }
teardown { UNLISTEN *; }
session notifier
setup { LISTEN c2; }
step notify { NOTIFY c1, 'hello'; }
step self { NOTIFY c2, 'me'; }
teardown { UNLISTEN *; }
"""

SAFE_SNAPSHOT = """
setup { CREATE TABLE acct (id text PRIMARY KEY, balance int); INSERT INTO acct VALUES ('X', 0), ('Y', 0); }
teardown { DROP TABLE acct; }
session s1
setup { BEGIN ISOLATION LEVEL SERIALIZABLE; }
step r1 { SELECT balance FROM acct WHERE id = 'X'; }
step w1 { UPDATE acct SET balance = 1 WHERE id = 'Y'; }
step c1 { COMMIT; }
session s2
setup { BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE; }
step r2 { SELECT id, balance FROM acct ORDER BY id; }
step c2 { COMMIT; }
"""


def play(text: str, perm: str):
    return Run(to_scenario(parse(text, "t.spec"), "t.spec")).play(perm)


def output(tmp_path: Path, capsys, text: str, perm: str) -> str:
    spec = tmp_path / "t.spec"
    spec.write_text(text)
    assert cli.main(["run", str(spec), "--permutation", perm]) == 0
    return capsys.readouterr().out


def test_a_trigger_notice_is_an_event_before_the_wait_and_at_the_completion():
    r = play(TRIGGER, "u1 u2 c1")
    kinds = [(e.kind, e.step) for e in r.events if e.step == "u2" or e.kind == "notice"]
    assert kinds == [("notice", "u1"), ("launch", "u2"), ("wait", "u2"),
                     ("notice", "u2"), ("complete", "u2")]
    # u2's trigger fires only once s1's row is released: its notice comes after c1 commits
    notice = next(e.notice for e in r.events if e.kind == "notice" and e.step == "u2")
    assert (notice.session, notice.severity, notice.message) == ("s2", "NOTICE",
                                                                 "updating by s1")
    assert r.waited_for("u2") == ("s1",)
    assert "  [s2] NOTICE:  updating by s1" in r.text()


def test_notices_print_where_isolationtester_reads_them(tmp_path: Path, capsys):
    out = output(tmp_path, capsys, TRIGGER, "u1 u2 c1 two")
    assert out.split("\n", 3)[3] == (
        "s1: NOTICE:  updating one\n"
        "step u1: BEGIN; UPDATE noisy SET v = 'by s1' WHERE k = 1;\n"
        "step u2: UPDATE noisy SET v = 'by s2' WHERE k = 1; <waiting ...>\n"
        "step c1: COMMIT;\n"
        "s2: NOTICE:  updating by s1\n"
        "step u2: <... completed>\n"
        # a notice after the step's first result goes between its result sets
        "step two: SELECT 1 AS a; SELECT say('b') AS b;\n"
        "a\n-\n1\n(1 row)\n\n"
        "s2: WARNING:  said b\n"
        "DETAIL:  in say()\n"
        "b\n-\nb\n(1 row)\n\n"
        # the session teardown's result, as isolationtester prints it
        "v    \n-----\nby s2\n(1 row)\n\n")


def test_notifications_are_events_after_the_step_of_the_session_that_received_them(
        tmp_path: Path, capsys):
    r = play(NOTIFY, "listen notify self check")
    heard = [(e.step, e.notification.session, e.notification.channel,
              e.notification.payload, e.notification.sender)
             for e in r.events if e.kind == "notify"]
    # a self-notify arrives with its own step; another session's waits for the
    # listener's next step
    assert heard == [("self", "notifier", "c2", "me", "notifier"),
                     ("check", "listener", "c1", "hello", "notifier")]
    assert '  [listener] NOTIFY "c1" with payload "hello" from notifier' in r.text()
    out = output(tmp_path, capsys, NOTIFY, "listen notify self check")
    assert out.splitlines()[3:] == [
        "step listen: LISTEN c1;",
        "step notify: NOTIFY c1, 'hello';",
        "step self: NOTIFY c2, 'me';",
        'notifier: NOTIFY "c2" with payload "me" from notifier',
        "step check: SELECT 1 AS x;", "x", "-", "1", "(1 row)", "",
        'listener: NOTIFY "c1" with payload "hello" from notifier']


def test_the_timeline_shows_what_a_step_heard():
    texts = [t.get_text() for t in timeline(play(TRIGGER, "u1 u2 c1")).axes[0].texts]
    assert "NOTICE: updating by s1" in texts and "NOTICE: updating one" in texts
    texts = [t.get_text() for t in timeline(play(NOTIFY, "listen notify check")).axes[0].texts]
    assert "NOTIFY c1" in texts


def test_a_safe_snapshot_wait_is_seen_and_names_the_transactions_it_waits_for():
    r = play(SAFE_SNAPSHOT, "r1 r2 w1 c1 c2")
    # a READ ONLY DEFERRABLE waits for s1 to end (and for any other serializable
    # transaction on the server, which a test running beside this one may have open)
    assert "s1" in r.waited_for("r2")
    order = [(e.kind, e.step) for e in r.events if e.kind in ("wait", "commit")
             or (e.kind == "complete" and e.step == "r2")]
    assert order[:3] == [("wait", "r2"), ("commit", "c1"), ("complete", "r2")]
    completed = next(e for e in r.events if e.step == "r2" and e.results)
    # its snapshot, taken before w1, proved safe once s1 ended: s1's write is not in it
    assert completed.results[0].rows == (("X", "0"), ("Y", "0"))


def test_each_setup_block_runs_on_its_own_outside_a_transaction(tmp_path: Path, capsys):
    text = ("setup { CREATE TABLE v (x int); INSERT INTO v VALUES (1); }\n"
            "setup { VACUUM ANALYZE v; }\n"
            "setup { SELECT count(*) AS n FROM v; CREATE INDEX ON v (x); }\n"
            "setup { SELECT 'shown' AS last; }\n"
            "teardown { DROP TABLE v; }\n"
            "session a\nstep r { SELECT x FROM v; }\n")
    out = output(tmp_path, capsys, text, "r")
    # VACUUM works; only a block's last result is printed, as PQexec returns only that
    assert out.splitlines()[2:7] == ["starting permutation: r", "last ", "-----", "shown",
                                     "(1 row)"]


def test_a_copy_step_fails_or_is_read_and_the_session_goes_on(tmp_path: Path, capsys):
    text = ("setup { CREATE TABLE cp (x int); INSERT INTO cp SELECT generate_series(1, 5000); }\n"
            "teardown { DROP TABLE cp; }\n"
            "session a\nstep cin { COPY cp FROM STDIN; }\nstep cout { COPY cp TO STDOUT; }\n"
            "step n { SELECT count(*) AS n FROM cp; }\n")
    assert output(tmp_path, capsys, text, "cin cout n").splitlines()[3:] == [
        "step cin: COPY cp FROM STDIN;",
        "ERROR:  COPY from stdin failed: a spec step has no data to COPY FROM STDIN",
        "step cout: COPY cp TO STDOUT;",  # 5000 rows read and dropped, as nobody prints them
        "step n: SELECT count(*) AS n FROM cp;", "   n", "----", "5000", "(1 row)", ""]


def test_a_session_the_server_closes_fails_its_steps_and_the_run_goes_on(tmp_path: Path,
                                                                         capsys):
    """transaction_timeout ends the session with FATAL. Its steps then fail, the others'
    go on, and its teardown's failure is reported on stderr, as isolationtester does."""
    text = ("setup { CREATE TABLE tt (x int); }\nteardown { DROP TABLE tt; }\n"
            "session s1\n"
            "step b { BEGIN; SET LOCAL transaction_timeout = '100ms'; INSERT INTO tt VALUES (1);"
            " SELECT pg_sleep(3); }\n"
            "step c { COMMIT; }\nteardown { SELECT 1 AS t; }\n"
            "session s2\nstep r { SELECT count(*) AS n FROM tt; }\n")
    spec = tmp_path / "t.spec"
    spec.write_text(text)
    assert cli.main(["run", str(spec), "--permutation", "b c r"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    at = lines.index("step c: COMMIT;")
    assert "transaction timeout" in lines[at - 1] and lines[at - 1].startswith("ERROR:  ")
    assert lines[at + 1].startswith("ERROR:  ") and "connection" in lines[at + 1]
    assert lines[at + 2:at + 6] == ["step r: SELECT count(*) AS n FROM tt;", "n", "-",
                                    "0"]  # the closed session's insert is gone
    assert err.splitlines() == [line for line in err.splitlines()
                                if line.startswith("teardown of session s1 failed: ")]
    assert len(err.splitlines()) == 1 and "Traceback" not in err
