"""Spec files run as a role of their own, no superuser: they cannot harm the server.

The probe ran `COPY ... TO PROGRAM` as the server's OS user and made `ALTER SYSTEM SET
max_connections = 3` stick across restarts. Now PostgreSQL itself refuses both (42501),
and the trace shows its error; `--superuser` is the explicit way back.
"""

from __future__ import annotations

import pytest

from lab.db import open_run_database, resolve
from lab.errors import RunFailed
from lab.runner import Run
from lab.spec import load_scenario, run_spec

ATTACKS = {
    "program": "COPY (SELECT 1) TO PROGRAM 'id > {out}';",
    "system": "ALTER SYSTEM SET max_connections = 3;",
    "read_file": "SELECT pg_read_file('postgresql.conf');",
    "copy_file": "COPY (SELECT 1) TO '{out}';",
    "superuser": "SET ROLE postgres;",
    "server_log": "SELECT pg_ls_logdir();",
    "function": "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'libc', 'getpid';",
}
ALLOWED = {  # what isolation specs need, granted to the role
    "who": "SELECT current_setting('is_superuser') AS superuser, pg_get_userbyid(datdba)"
           " = current_user AS owns_db FROM pg_database WHERE datname = current_database();",
    "timeouts": "SET deadlock_timeout = '20ms'; SET lock_timeout = '2s';"
                " SET statement_timeout = '5s'; SELECT 1 AS ok;",
    "signal": "SELECT pg_has_role('pg_signal_backend', 'USAGE') AS may_signal;",
    "tables": "CREATE TABLE t (x int); INSERT INTO t VALUES (1); UPDATE assignment SET"
              " notes = 'spec' WHERE id = 1; DROP TABLE t; SELECT 1 AS ok;",
}


def _spec(path, steps: dict[str, str], setup: str = "") -> str:
    text = (f"setup {{ {setup} }}\n" if setup else "") + "session s\n" + "".join(
        f"step {name} {{ {sql} }}\n" for name, sql in steps.items())
    path.write_text(text)
    return str(path)


def test_what_would_harm_the_server_is_refused_with_postgresqls_own_error(tmp_path):
    out = tmp_path / "pwned"
    spec = _spec(tmp_path / "attacks.spec", {k: v.format(out=out) for k, v in ATTACKS.items()})
    result = run_spec(spec, db="embedded")[0]
    assert result.errors() == {name: "42501" for name in ATTACKS}, result.text()
    assert "ERROR 42501: permission denied to COPY to or from an external program" \
        in result.text()
    assert not out.exists()


def test_what_isolation_specs_need_is_granted(tmp_path):
    result = run_spec(_spec(tmp_path / "needs.spec", ALLOWED), db="embedded")[0]
    assert result.errors() == {}, result.text()
    rows = {e.step: e.results[0].rows for e in result.events if e.kind == "complete"}
    assert rows["who"] == (("off", "t"),) and rows["signal"] == (("t",),)


def test_another_runs_database_is_out_of_reach(tmp_path):
    other = open_run_database(resolve("embedded"))
    try:
        spec = _spec(tmp_path / "drop.spec", {"drop": f'DROP DATABASE "{other.name}";',
                                              "rename": f'ALTER DATABASE "{other.name}"'
                                                        ' RENAME TO x;'})
        result = run_spec(spec, db="embedded")[0]
    finally:
        other.close()
    assert result.errors() == {"drop": "42501", "rename": "42501"}, result.text()


def test_the_setup_runs_as_the_role_too(tmp_path):
    out = tmp_path / "pwned"
    spec = _spec(tmp_path / "setup.spec", {"one": "SELECT 1;"},
                 setup=ATTACKS["program"].format(out=out))
    with pytest.raises(RunFailed, match="the spec's setup failed: 42501"):
        Run(spec, db="embedded")
    assert not out.exists()


def test_superuser_is_an_explicit_opt_in_and_replays_as_one(tmp_path):
    spec = _spec(tmp_path / "who.spec", {"who": ALLOWED["who"]})
    result = Run(load_scenario(spec, superuser=True), db="embedded").play()
    assert result.events[1].results[0].rows == (("on", "f"),)
    assert "--superuser" in result.replay.cli and "superuser=True" in result.replay.python
    plain = Run(spec, db="embedded").play()
    assert plain.events[1].results[0].rows == (("off", "t"),) and "--superuser" not in \
        plain.replay.cli
