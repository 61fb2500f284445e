"""The state in PostgreSQL: the `state` URI and its password, the schema friendtor makes and
migrates, and the one line each failure gets (unreachable, newer schema, a foreign table)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import time_machine
from pg_servers import fresh_database

from scheduler.app import pgreplies, pgschema, pgstore
from scheduler.app.pgstore import PgStore
from scheduler.cli.main import main
from scheduler.core.config import Service
from scheduler.core.errors import StateError, StateUnavailable

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-11-20T12:00:00Z"   # the example's December invites are due


def config_with_state(tmp_path: Path, state: str, extra: str = "") -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    service = (folder / "service.toml").read_text()
    service = service.replace('state = "var/state.json"', f"state = {json.dumps(state)}\n{extra}", 1)
    (folder / "service.toml").write_text(service)
    return folder


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("state, says", [
    ("postgresql://friendtor:hunter2-secret@db.example.org/friendtor", "holds a password"),
    ("postgres://friendtor@db.example.org/friendtor?password=hunter2-secret", "holds a password"),
    ("postgresql://friendtor@db.example.org:99999/friendtor?x=hunter2-secret", "not a valid libpq URI"),
], ids=["userinfo", "query", "bad-port"])
def test_a_state_uri_with_a_password_or_garbage_is_one_line_and_never_echoed(tmp_path, capsys, state, says):
    """validate refuses a password in the URI (secrets never in config files) without quoting it."""
    folder = config_with_state(tmp_path, state)
    assert main(["validate", "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert "service.toml" in line and "state" in line and says in line
    assert "hunter2" not in line


def test_state_password_env_must_name_a_variable(tmp_path, capsys):
    """The password's variable NAME goes in the config; a value that looks like a password is refused unquoted."""
    folder = config_with_state(tmp_path, "postgresql://friendtor@db.example.org/friendtor",
                               'state_password_env = "p@ss w0rd!"')
    assert main(["validate", "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert "state_password_env" in line and "p@ss" not in line


def test_an_unreachable_database_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """No server at the socket folder: run stops with one line naming the database (no password), exit 2."""
    monkeypatch.setenv("FRIENDTOR_DB_PASSWORD", "hunter2-secret")
    monkeypatch.setattr(pgschema, "CONNECT_SECONDS", 2)
    folder = config_with_state(tmp_path, f"postgresql://friendtor@/friendtor?host={tmp_path}",
                               'state_password_env = "FRIENDTOR_DB_PASSWORD"')
    assert main(["run", "--once", "--now", NOW, "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert "PostgreSQL friendtor@" in line and "cannot reach the state database" in line
    assert "hunter2" not in line


def test_a_password_variable_that_is_not_set_is_one_line(tmp_path, capsys, monkeypatch, pg_url):
    """state_password_env names a variable missing from the environment: said before connecting."""
    monkeypatch.delenv("FRIENDTOR_DB_PASSWORD", raising=False)
    folder = config_with_state(tmp_path, pg_url, 'state_password_env = "FRIENDTOR_DB_PASSWORD"')
    assert main(["status", "--config", str(folder)]) == 2
    assert "FRIENDTOR_DB_PASSWORD, which is not set" in one_line(capsys)


def test_the_password_comes_from_the_named_variable_and_a_refused_sign_in_is_one_line(pg_url, monkeypatch):
    """A role that must give its password (scram): the one in state_password_env signs in; a wrong
    one is StateUnavailable naming the sign-in, never the password."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'node'").fetchall():
            conn.execute("CREATE ROLE node LOGIN PASSWORD 'from-the-env'")
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO node")
        conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO node")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if "node scram-sha-256" not in hba.read_text():   # the role only; everyone else stays trusted
            hba.write_text("local all node scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)   # the postmaster rereads the file on SIGHUP, a moment later
    url = pg_url.replace("postgres@", "node@")
    service = Service(state=url, state_password_env="FRIENDTOR_DB_PASSWORD")
    monkeypatch.setenv("FRIENDTOR_DB_PASSWORD", "from-the-env")
    with PgStore(url, service) as s:
        assert s.q("SELECT current_user") == [("node",)]
    monkeypatch.setenv("FRIENDTOR_DB_PASSWORD", "hunter2-wrong")
    with pytest.raises(StateUnavailable, match="refused friendtor's sign-in") as refused:
        PgStore(url, service)
    assert "hunter2" not in str(refused.value)


def test_an_empty_database_gets_the_schema_and_one_secret(pg_server):
    """friendtor makes its tables in an empty database, once, and every node reads the same secret."""
    url = fresh_database(pg_server, empty=True)
    with PgStore(url, Service()) as a, PgStore(url, Service()) as b:
        assert a.secret == b.secret and len(a.secret) == 32
        assert a.q("SELECT max(version) FROM friendtor_schema") == [(len(pgschema.MIGRATIONS),)]
        assert a.sends() == [] and a.meetings() == {}


def test_an_older_schema_is_migrated_in_order(pg_server, monkeypatch):
    """A database at this friendtor's version meets a friendtor that knows one more step: the
    step runs once, recorded."""
    url = fresh_database(pg_server)
    known = len(pgschema.MIGRATIONS)
    monkeypatch.setattr(pgschema, "MIGRATIONS", [*pgschema.MIGRATIONS, "ALTER TABLE outbox ADD COLUMN note text"])
    with PgStore(url, Service()) as s:
        assert s.q("SELECT version FROM friendtor_schema ORDER BY version") == [(v,) for v in range(1, known + 2)]
        assert s.q("SELECT count(*) FROM information_schema.columns WHERE table_name = 'outbox' "
                   "AND column_name = 'note'") == [(1,)]
    with PgStore(url, Service()) as s:   # not again
        assert s.q("SELECT count(*) FROM friendtor_schema") == [(known + 1,)]


PRUNE_INDEXES = {"outbox": "outbox_expires", "meetings": "meetings_end", "alerts": "alerts_day",
                 "sent": "sent_at", "replies": "replies_received"}


def plan(conn: psycopg.Connection, sql: str, params: tuple) -> str:
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())


def test_a_version_1_state_gets_the_prune_indexes_and_keeps_its_rows(pg_server):
    """Migration 2 on a state made by the first schema: the indexes every tick's prune needs
    are added, the rows stay, and each prune question can use its index (with sequential scans
    priced out, EXPLAIN still names a sequential scan if no index fits the question as written)."""
    url = fresh_database(pg_server, empty=True)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE friendtor_schema (version integer NOT NULL, applied timestamptz NOT NULL "
                     "DEFAULT now())")
        conn.execute(pgschema.MIGRATIONS[0])
        conn.execute("INSERT INTO friendtor_schema (version) VALUES (1)")
        conn.execute("INSERT INTO outbox (sid, doc) VALUES ('k|a@x.example', %s)",
                     (json.dumps({"status": "sent", "expires": "2027-01-01T00:00:00Z"}),))
        conn.execute("INSERT INTO sent (k, grp, doc) VALUES ('<m@x>', 'g1', %s)",
                     (json.dumps({"sent_at": "2026-01-01T00:00:00Z"}),))
    with PgStore(url, Service()) as s:
        assert s.q("SELECT max(version) FROM friendtor_schema") == [(len(pgschema.MIGRATIONS),)]
        assert s.q("SELECT count(*) FROM outbox") == [(1,)] and s.q("SELECT count(*) FROM sent") == [(1,)]
        # analyzed by the migration: the planner knows the indexed expressions' values
        assert s.q("SELECT count(DISTINCT tablename) FROM pg_stats WHERE tablename = ANY(%s)",
                   (["outbox_expires", "sent_at"],)) == [(2,)]
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_seqscan = off")
        questions = {**pgstore.PRUNE, **pgreplies.PRUNE}
        assert set(questions) == set(PRUNE_INDEXES)
        for table, sql in questions.items():
            assert PRUNE_INDEXES[table] in plan(conn, sql, ("2026-06-01T00:00:00Z",)), table


def test_a_version_2_state_gets_the_indexes_of_what_a_tick_plans_on(pg_server):
    """Migration 3 on a state made by the second schema: each question a tick's planner asks of
    the outbox (the records it may still ask about, the invites not expired, the failure alerts'
    own sids) names an index with sequential scans priced out, and nothing it asks reads a row
    whose send has expired."""
    url = fresh_database(pg_server, empty=True)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE friendtor_schema (version integer NOT NULL, applied timestamptz NOT NULL "
                     "DEFAULT now())")
        for step in (0, 1):
            conn.execute(pgschema.MIGRATIONS[step])
            conn.execute("INSERT INTO friendtor_schema (version) VALUES (%s)", (step + 1,))
        rows = {"invite:g:2027-03|a@x.example": ("invite", "sent", "2027-05-01T00:00:00Z"),
                "invite:g:2026-01|a@x.example": ("invite", "sent", "2026-03-01T00:00:00Z"),
                "agenda:g:2026-01|a@x.example": ("agenda", "sent", "2026-03-01T00:00:00Z"),
                "agenda:g:2026-02|a@x.example": ("agenda", "retry", "2026-04-01T00:00:00Z"),
                "calendar-problem:g:abc|a@x.example": ("alert", "sent", "2026-02-01T00:00:00Z"),
                "invite:g:gathering-x|b@x.example": ("gathering", "pending", "2027-06-01T00:00:00Z")}
        for sid, (kind, status, expires) in rows.items():
            key, to = sid.split("|")
            conn.execute("INSERT INTO outbox (sid, doc) VALUES (%s, %s)", (sid, json.dumps(
                {"key": key, "recipient": to, "kind": kind, "status": status, "expires": expires, "name": "A",
                 "timezone": "UTC", "sent_at": "2026-01-01T00:00:00Z"})))
    now = datetime(2027, 3, 1, tzinfo=UTC)
    with PgStore(url, Service()) as s:
        assert s.q("SELECT max(version) FROM friendtor_schema") == [(len(pgschema.MIGRATIONS),)]
        # not expired, open (whatever its expiry: few), and every alert
        assert set(s.planned_at(now)) == {"invite:g:2027-03|a@x.example", "agenda:g:2026-02|a@x.example",
                                          "calendar-problem:g:abc|a@x.example", "invite:g:gathering-x|b@x.example"}
        # a gathering's invites (their own kind, an invite's key) count, as on TinyDB
        assert s.invited_at(now) == {"invite:g:2027-03": {"a@x.example": ("A", "UTC", "2026-01-01T00:00:00Z")},
                                     "invite:g:gathering-x": {"b@x.example": ("A", "UTC", None)}}
        assert set(s.invited) == {"invite:g:2027-03", "invite:g:2026-01", "invite:g:gathering-x"}
        assert s.on_record(["agenda:g:2026-01|a@x.example", "nope|x"]) == {"agenda:g:2026-01|a@x.example"}
        assert s.q("SELECT current_setting('enable_seqscan')") == [("on",)]   # priced out for those two only
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_seqscan = off")
        at = {"now": "2027-03-01T00:00:00Z"}
        planned = plan(conn, pgstore.PLANNED_AT, at)
        for index in ("outbox_expires", "outbox_open", "outbox_alerts"):
            assert index in planned, planned
        assert "outbox_invites" in plan(conn, pgstore.INVITED_AT, at)
        assert "outbox_pkey" in plan(conn, pgstore.ON_RECORD, (["k|a@x.example"],))
    with psycopg.connect(url) as conn:   # prune estimates what expired from the expiry's statistics
        conn.execute("INSERT INTO outbox (sid, doc) SELECT 'agenda:g:2027-03|m' || i, jsonb_build_object("
                     "'status', 'sent', 'expires', '2027-05-01T00:00:00Z') FROM generate_series(1, 3000) AS i")
        conn.execute("ANALYZE outbox")
        assert conn.execute("SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'outbox_expiry'"
                            ).fetchone() == (1,)
        nothing_expired = plan(conn, pgstore.PRUNE["outbox"], ("2026-01-01T00:00:00Z",))
        assert "rows=1 " in nothing_expired, nothing_expired   # not a third of the outbox


def test_a_server_older_than_friendtor_needs_is_one_line(tmp_path, capsys, pg_url, monkeypatch):
    """A server without what the schema uses (this one, as if friendtor needed PostgreSQL 99)."""
    monkeypatch.setattr(pgschema, "OLDEST_SERVER", 990000)
    folder = config_with_state(tmp_path, pg_url)
    assert main(["status", "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert "older than friendtor needs (99 or newer)" in line and "upgrade the server" in line


def test_a_newer_schema_is_refused_with_one_line(tmp_path, capsys, pg_url):
    """A database a newer friendtor migrated: an older one refuses it (exit 2) instead of misreading it."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO friendtor_schema (version) VALUES (99)")
    folder = config_with_state(tmp_path, pg_url)
    assert main(["status", "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert "schema is version 99, newer than this friendtor knows" in line and "upgrade friendtor" in line


def test_a_database_with_someone_elses_outbox_is_refused(pg_server):
    """Tables friendtor did not make are never taken over."""
    url = fresh_database(pg_server, empty=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE outbox (id int)")
    with pytest.raises(StateError, match="did not create; give friendtor a database of its own"):
        PgStore(url, Service())


def test_a_change_not_committed_is_dropped_and_a_lost_connection_is_state_unavailable(pg_url):
    """As with a TinyDB store: what is not committed is gone at close; a dead connection says StateUnavailable."""
    from scheduler.core.meetings import Meeting

    now = datetime(2027, 3, 1, tzinfo=UTC)
    with PgStore(pg_url, Service()) as s:
        s.note_alert("g", "2027-03", now.date())
    with PgStore(pg_url, Service()) as s:
        assert s.alerts() == {}
        killer = psycopg.connect(pg_url, autocommit=True)
        killer.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                       "'friendtor' AND pid <> pg_backend_pid()")
        killer.close()
        with pytest.raises(StateUnavailable):
            s.save_meeting(Meeting("g", "2027-03", "u@x", 0, now, now, now))
        assert s.meetings() == {}   # connected again: the next question is answered


def test_a_reader_sees_one_snapshot_while_a_node_writes(pg_url):
    """`status` on a database: every read of one store sees the state as it was at its first read."""
    from test_store import send

    with PgStore(pg_url, Service()) as node:
        node.add_sends([send("invite:g:2027-03")])
        node.commit()
        with PgStore(pg_url, Service(), lock=False) as reader:
            assert [r.key for r in reader.sends()] == ["invite:g:2027-03"]
            node.add_sends([send("agenda:g:2027-03")])
            node.update_sends([r.moved_on(r.status.__class__("sent"), message_id="<m@x>") for r in node.sends()
                               if r.key.startswith("invite")])
            node.commit()
            assert [(r.key, str(r.status)) for r in reader.sends()] == [("invite:g:2027-03", "pending")]
            assert reader.open_sends() and not reader.failed_sends()
        with PgStore(pg_url, Service(), lock=False) as later:
            assert sorted((r.key, str(r.status)) for r in later.sends()) == [
                ("agenda:g:2027-03", "pending"), ("invite:g:2027-03", "sent")]


def test_coordinators_commands_write_to_the_database_while_nodes_run(tmp_path, capsys, pg_url):
    """cancel, attendance and goals store at once on a database (no incoming/ folder), beside a running node."""
    from scheduler.app.stores import open_store
    from scheduler.app.loader import load_config

    folder = config_with_state(tmp_path, pg_url)
    assert main(["run", "--once", "--now", NOW, "--config", str(folder)]) == 0
    capsys.readouterr()
    config = load_config(folder)
    # A node holding the state (a TinyDB command would hand over); the command a day after the first tick.
    with open_store(config), time_machine.travel(datetime(2026, 11, 21, 12, tzinfo=UTC), tick=False):
        assert main(["cancel", "k-club", "--config", str(folder)]) == 0
        assert "stored" in capsys.readouterr().out
    assert not (folder / "var" / "incoming").exists()
    with open_store(config, lock=False) as s:
        assert [m.cancelled for (g, _), m in s.meetings().items() if g == "k-club"] == [True]


def test_a_refused_statement_costs_only_its_transaction(pg_url):
    """A statement the database refuses is a StateError, and the store goes on with a clean transaction."""
    with PgStore(pg_url, Service()) as s:
        with pytest.raises(StateError, match="refused a change"):
            s.q("INSERT INTO outbox (sid, doc) VALUES ('x', 'not json')")
        assert s.sends() == [] and s.commit()


@pytest.mark.parametrize("value, says", [("1", "greater than or equal to 2"), ('"five"', "expected a whole number"),
                                         ("999999999", "less than or equal to 86400")])
def test_lease_seconds_garbage_is_one_line(tmp_path, capsys, value, says):
    """A lease that is too short, not a number or longer than a day: one line naming the field, exit 2."""
    folder = config_with_state(tmp_path, "postgresql://friendtor@db.example.org/friendtor", f"lease_seconds = {value}")
    assert main(["validate", "--config", str(folder)]) == 2
    line = one_line(capsys)
    assert line.startswith("service.toml: lease_seconds:") and says in line, line
