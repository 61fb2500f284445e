"""`friendtor state copy`: TinyDB to PostgreSQL and back, everything copied with the secret,
counts checked, a non-empty destination refused unless --replace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pg_servers import fresh_database

from scheduler.app.statecopy import documents
from scheduler.app.pgstore import PgStore
from scheduler.app.store import Store
from scheduler.cli.main import main
from scheduler.core.config import Service

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-11-20T12:00:00Z"


@pytest.fixture
def tinydb_state(tmp_path) -> Path:
    """A TinyDB state after a first tick of the example (a meeting, invites sent, Message-IDs)."""
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["run", "--once", "--now", NOW, "--config", str(folder)]) == 0
    return folder / "var" / "state.json"


def contents(store) -> tuple[dict, bytes]:
    docs = documents(store)
    return {t: sorted(json.dumps(d, sort_keys=True) for d in rows) for t, rows in docs.items()}, store.secret


def test_tinydb_to_postgresql_and_back_copies_everything(tinydb_state, pg_server, tmp_path, capsys):
    """Every record of every table and the secret arrive; a copy back to a new file is the same again."""
    url = fresh_database(pg_server, empty=True)
    assert main(["state", "copy", "--from", str(tinydb_state), "--to", url]) == 0
    assert "counts checked" in capsys.readouterr().out
    with Store(tinydb_state, lock=False) as s:
        original = contents(s)
    assert sum(len(v) for v in original[0].values()) > 10
    with PgStore(url, Service()) as s:
        assert contents(s) == original
    back = tmp_path / "back" / "state.json"
    back.parent.mkdir()
    assert main(["state", "copy", "--from", url, "--to", str(back)]) == 0
    with Store(back, lock=False) as s:
        assert contents(s) == original


def test_a_destination_with_a_state_is_refused_unless_replace(tinydb_state, pg_url, capsys):
    """A non-empty database (or an existing file) is never overwritten without --replace."""
    assert main(["state", "copy", "--from", str(tinydb_state), "--to", pg_url]) == 0
    capsys.readouterr()
    assert main(["state", "copy", "--from", str(tinydb_state), "--to", pg_url]) == 2
    assert "already holds a state; add --replace" in capsys.readouterr().err
    assert main(["state", "copy", "--from", str(tinydb_state), "--to", pg_url, "--replace"]) == 0
    assert main(["state", "copy", "--from", pg_url, "--to", str(tinydb_state)]) == 2
    assert "already holds a state" in capsys.readouterr().err


@pytest.mark.parametrize("source, says", [
    ("postgresql://u:hunter2@db.example.org/x", "holds a password"),
    ("nowhere/state.json", "no such state file"),
], ids=["password-in-uri", "missing-file"])
def test_a_bad_source_is_one_line(tmp_path, capsys, source, says):
    """Garbage in --from: one line, exit 2, no password echoed."""
    assert main(["state", "copy", "--from", source, "--to", str(tmp_path / "new.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "hunter2" not in err[0]
