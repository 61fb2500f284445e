"""`friendtor goals` (issue 12, point 4): a coordinator lists members' goals and items from the
group file and from replies, marks a reply's goal done, removes an item (beside a running
service through the hand-over folder), and exports reply items as TOML for the group file.

The example config runs once at NOW so a state exists; reply items are stored as the reply
intake stores them (scheduler.app.intake), with the IDs the state gives them.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.app.handover import Handover, incoming_folder
from scheduler.app.loader import load_config
from scheduler.app.store import Store
from scheduler.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
MAYA = "maya.chen@northeast-childrens.example"
PRIYA = "priya.raman@pacific-u.example"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ran") / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["run", "--config", str(folder), "--now", NOW.isoformat()]) == 0
    return folder


@pytest.fixture
def cfg(ran, tmp_path):
    folder = tmp_path / "cfg"
    shutil.copytree(ran, folder)
    return folder


def state(folder: Path) -> Path:
    return folder / "var" / "state.json"


def add(folder: Path, member: str, kind: str, text: str, **extra) -> str:
    """Store one item as the reply intake does; its ID."""
    with Store(state(folder)) as store:
        item_id = store.replies.add_item({"group": "k-club", "member": member, "kind": kind, "text": text,
                                          "reply": "<r1@mail.example>", "received": "2026-11-20T12:30:00Z",
                                          **extra})
        store.commit()
    return item_id


def items(folder: Path) -> list[dict]:
    with Store(state(folder), lock=False) as store:
        return store.replies.items("k-club")


def command(capsys, folder: Path, *args: str) -> tuple[int, str, str]:
    with time_machine.travel(LATER, tick=False):
        try:
            code = main(["goals", "k-club", *args, "--config", str(folder)])
        except SystemExit as exc:  # argparse refusing the arguments (one line, exit 2 too)
            code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "Traceback" not in err


def test_list_shows_file_and_reply_items_numbered_as_emails_number_them(cfg, capsys):
    """Maya's open goals are numbered by due date (undated last) across the file and replies;
    each reply item shows its ID and source; agenda items name their meeting."""
    early = add(cfg, MAYA, "goal", "Email the chair", due="2026-12-01")
    undated = add(cfg, MAYA, "goal", "Read two papers", due=None)
    agenda = add(cfg, PRIYA, "agenda", "Budget questions", cycle="2026-12")
    cheer = add(cfg, PRIYA, "celebrate", "Paper accepted", cycle="2026-12")
    code, out, err = command(capsys, cfg)
    assert code == 0, err
    lines = out.splitlines()
    maya = [line for line in lines if MAYA in line]
    assert [line.split()[0:2] for line in maya] == [["1", early], ["2", "goal-1"], ["3", undated]]
    assert "reply 2026-11-20" in maya[0] and "groups/k-club.toml" in maya[1]
    row = next(line for line in lines if agenda in line)
    assert "meeting 2026-12 (Thu 10 Dec 2026)" in row and "Budget questions" in row
    assert any(cheer in line and "celebrate" in line for line in lines)


def test_ids_are_stable_when_another_item_goes(cfg, capsys):
    """An item's ID is the state's, not its place: removing one leaves the others' IDs as they were."""
    first = add(cfg, MAYA, "goal", "First", due="2026-12-01")
    second = add(cfg, MAYA, "goal", "Second", due="2026-12-02")
    assert command(capsys, cfg, "--remove", first)[0] == 0
    code, out, _ = command(capsys, cfg, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows if r["text"] == "Second"] == [second]
    assert not [r for r in rows if r["id"] == first]


def test_member_filter_and_json(cfg, capsys):
    """--member narrows the list to one member (any case); --json carries number, source and due."""
    mine = add(cfg, MAYA, "goal", "Email the chair", due="2026-12-01")
    add(cfg, PRIYA, "goal", "Not Maya's")
    code, out, _ = command(capsys, cfg, "--member", MAYA.upper(), "--json")
    rows = json.loads(out)
    assert code == 0 and {r["member"] for r in rows} == {MAYA}
    assert rows[0] == {"id": mine, "kind": "goal", "member": MAYA, "text": "Email the chair", "due": "2026-12-01",
                       "done": False, "number": 1,
                       "source": {"from": "reply", "member": MAYA, "date": "2026-11-20"}}


def test_done_marks_a_reply_goal_and_remove_of_the_mark_reopens_it(cfg, capsys):
    """--done adds a coordinator's done mark (listed with its own ID); a second --done is refused;
    removing the mark reopens the goal; removing the goal removes its mark too."""
    goal = add(cfg, MAYA, "goal", "Email the chair")
    code, out, err = command(capsys, cfg, "--done", goal)
    assert code == 0 and "marked done; stored" in out, err
    row = next(r for r in json.loads(command(capsys, cfg, "--json")[1]) if r["id"] == goal)
    assert row["done"] and row["done_by"]["from"] == "coordinator"
    one_line_error(*command(capsys, cfg, "--done", goal))
    assert command(capsys, cfg, "--remove", row["done_by"]["id"])[0] == 0
    assert not next(r for r in json.loads(command(capsys, cfg, "--json")[1]) if r["id"] == goal)["done"]
    command(capsys, cfg, "--done", goal)
    assert command(capsys, cfg, "--remove", goal)[0] == 0
    assert items(cfg) == []


@pytest.mark.parametrize(("flag", "entry", "names"), [
    ("--done", "goal-2", "[[goals]] number 2, 'Finish the preliminary data figure"),
    ("--remove", "milestone-1", "[[milestones]] number 1, 'K23 awarded'"),
    ("--remove", "AGENDA-2", "[[agenda]] number 2"),
    ("--done", "goal-9", "has no [[goals]] number 9 (it has 5)"),
])
def test_a_group_file_entry_is_edited_in_the_file(cfg, capsys, flag, entry, names):
    """An entry of the group file is named with its file and text, in one line; nothing changes."""
    before = state(cfg).read_bytes()
    code, out, err = command(capsys, cfg, flag, entry)
    one_line_error(code, out, err)
    assert names in err and "groups/k-club.toml" in err
    assert state(cfg).read_bytes() == before


def test_done_on_an_agenda_item_is_refused(cfg, capsys):
    """Only goals are done: an agenda item's --done says to use --remove."""
    agenda = add(cfg, PRIYA, "agenda", "Budget", cycle="2026-12")
    code, out, err = command(capsys, cfg, "--done", agenda)
    one_line_error(code, out, err)
    assert f"--remove {agenda}" in err


@pytest.mark.parametrize("args", [
    ["--done", "x", "--remove", "y"], ["--export", "--json"], ["--done", "abc123", "--member", MAYA],
    ["--member", "nobody@example.org"], ["--member", ""], ["--remove", "zzzzzz"], ["--done", ""],
    ["--done", "goal-0"], ["--remove", "\x1b[31mred"], ["--done", "goal-99999999999"],
])
def test_bad_input_is_one_line(cfg, capsys, args):
    """Both actions, an action with --member, an unknown member or ID: one line, exit 2, nothing stored."""
    before = state(cfg).read_bytes()
    one_line_error(*command(capsys, cfg, *args))
    assert state(cfg).read_bytes() == before
    assert not incoming_folder(state(cfg)).exists() or not list(incoming_folder(state(cfg)).iterdir())


def test_unknown_group(cfg, capsys):
    """An unknown group is one line naming the groups there."""
    with time_machine.travel(LATER, tick=False):
        code = main(["goals", "k-clbu", "--config", str(cfg)])
    out, err = capsys.readouterr()
    one_line_error(code, out, err)
    assert "k-club" in err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text(max_size=80))
def test_garbage_ids_and_emails(cfg, capsys, garbage):
    """Any text as an ID or member email: one line and exit 2 (or, for a member's own address, a list)."""
    for flag in ("--done", "--remove", "--member"):
        if garbage.startswith("-"):
            args = [f"{flag}={garbage}"]
        else:
            args = [flag, garbage]
        code, out, err = command(capsys, cfg, *args)
        if flag == "--member" and code == 0:
            continue  # garbage that happens to be a member's address (with spaces)
        one_line_error(code, out, err)
        assert "\x1b" not in err


def test_beside_the_running_service_the_change_is_handed_over(cfg, capsys):
    """While the service holds the state, --remove leaves a goals record in incoming/; the
    service's intake applies it at its next tick and clears it."""
    goal = add(cfg, MAYA, "goal", "Email the chair")
    config = load_config(cfg)
    with Store(state(cfg)) as held:  # the running service
        code, out, err = command(capsys, cfg, "--remove", goal)
        assert code == 0 and "handed to the running service" in out, err
        [record] = incoming_folder(state(cfg)).glob("goals-*.json")
        Handover(held, lambda: config, held.commit).ingest(LATER)
        assert not record.exists() and held.replies.items("k-club") == []


def test_a_handed_over_record_for_a_gone_item_is_logged_and_dropped(cfg, capsys, caplog):
    """The member's undo took the item back before the tick: the record is logged and dropped, not kept."""
    goal = add(cfg, MAYA, "goal", "Email the chair")
    config = load_config(cfg)
    with Store(state(cfg)) as held:
        assert command(capsys, cfg, "--done", goal)[0] == 0
        [record] = incoming_folder(state(cfg)).glob("goals-*.json")
        held.replies.remove_items([goal])  # the undo
        Handover(held, lambda: config, held.commit).ingest(LATER)
    assert not record.exists() and not list(incoming_folder(state(cfg)).glob("*.bad"))
    assert "goals change ignored" in caplog.text and "Email the chair" not in caplog.text


def test_a_broken_goals_record_is_set_aside(cfg):
    """A record that is not a goals record is kept as .bad for a person, never applied."""
    folder = incoming_folder(state(cfg))
    folder.mkdir(exist_ok=True)
    (folder / "goals-2026-11-20T13:00:00Z-1.json").write_text('{"group": "k-club", "action": "explode", "id": "a"}')
    config = load_config(cfg)
    with Store(state(cfg)) as store:
        Handover(store, lambda: config, store.commit).ingest(LATER)
    assert [p.name for p in folder.iterdir()] == ["goals-2026-11-20T13:00:00Z-1.json.bad"]


NASTY = ['Say "hi" \\ to C:\\temp', "Café ☕ 🎉 naïve", "a]]\n[[goals]]\nmember = 'x'", "tab\there",
         "'''triple''' \"\"\"quotes\"\"\"", "del\x7fchar \x1b[31m", "# not a comment", "\u2028sep"]


def test_export_is_toml_that_validate_accepts_when_appended(cfg, capsys):
    """Reply goals (a done one with done = true), celebrations and agenda items, with quotes,
    backslashes, emoji and control characters, append to the group file and validate cleanly."""
    goals = [add(cfg, MAYA, "goal", text, due="2027-01-05") for text in NASTY]
    command(capsys, cfg, "--done", goals[0])
    add(cfg, PRIYA, "celebrate", NASTY[1], cycle="2026-12")
    add(cfg, PRIYA, "agenda", NASTY[0], cycle="2026-12")
    add(cfg, PRIYA, "away", "", first="2026-12-20", last="2027-01-02")
    add(cfg, MAYA, "done", "Send specific aims page to primary mentor",
        goal="config:0:Send specific aims page to primary mentor")
    code, out, err = command(capsys, cfg, "--export")
    assert code == 0, err
    blocks = tomllib.loads(out)
    assert len(blocks["goals"]) == len(NASTY) and blocks["goals"][0]["done"] is True
    assert blocks["goals"][0]["text"] == NASTY[0] and blocks["goals"][1]["text"] == NASTY[1]
    assert blocks["milestones"][0]["text"] == NASTY[1]
    assert blocks["agenda"][0] == {"text": f"Priya Raman: {NASTY[0]}", "cycle": "2026-12"}
    assert "set done = true there" in out and "{ from = 2026-12-20, to = 2027-01-02 }" in out
    group_file = cfg / "groups" / "k-club.toml"
    group_file.write_text(group_file.read_text() + "\n" + out)
    assert main(["validate", "--config", str(cfg)]) == 0, capsys.readouterr()
    group = load_config(cfg).groups["k-club"]
    assert len(group.goals) == 5 + len(NASTY) and len(group.milestones) == 3 and len(group.agenda) == 3


def test_export_with_no_items_is_still_valid_toml(cfg, capsys):
    """No reply items: only comments, which TOML reads as nothing."""
    code, out, _ = command(capsys, cfg, "--export")
    assert code == 0 and tomllib.loads(out) == {}


def test_member_text_cannot_drive_the_terminal(cfg, capsys):
    """An escape sequence in a member's text is shown as '?', never sent to the terminal raw."""
    add(cfg, MAYA, "goal", "evil \x1b]0;owned\x07 title")
    code, out, _ = command(capsys, cfg)
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "evil ?]0;owned? title" in out


def test_before_the_first_run_the_list_is_the_group_file(tmp_path, capsys):
    """No state yet: the file's goals are listed; an ID from a reply cannot exist yet."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    code, out, _ = command(capsys, folder)
    assert code == 0 and "goal-1" in out
    code, out, err = command(capsys, folder, "--remove", "abc123")
    one_line_error(code, out, err)
    assert "has not run yet" in err


def test_a_done_mark_whose_goal_is_gone_is_listed_and_removable(cfg, capsys):
    """A member's done mark on a file goal whose text was edited since is still listed (kind
    done) so a coordinator can remove it; an ex-member's goal from a reply is listed too."""
    mark = add(cfg, MAYA, "done", "Old wording", goal="config:0:Old wording")
    gone = add(cfg, "left@elsewhere.example", "goal", "Still here")
    rows = json.loads(command(capsys, cfg, "--json")[1])
    assert [r["kind"] for r in rows if r["id"] == mark] == ["done"]
    assert [r["member"] for r in rows if r["id"] == gone] == ["left@elsewhere.example"]
    assert command(capsys, cfg, "--remove", mark)[0] == 0 and command(capsys, cfg, "--remove", gone)[0] == 0
    assert items(cfg) == []
