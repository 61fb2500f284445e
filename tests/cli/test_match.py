"""`friendtor match ROSTER --size MIN-MAX --out DIR`: the group files it writes validate (with and
without a service.toml), the report (text and JSON) places everyone once, and every bad roster or
argument is one line per problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from scheduler.app.loader import load_config
from scheduler.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
SOCIETY = REPO_ROOT / "tests" / "fixtures" / "rosters" / "society.toml"
EXAMPLE_SERVICE = REPO_ROOT / "config" / "example" / "service.toml"

PERSON = """
[[people]]
name = "{name}"
email = "{email}"
institution = "{institution}"
timezone = "{timezone}"
hours = "{hours}"
interests = ["research"]
"""


def person(i: int, **change: str) -> str:
    fields = {"name": f"Person {i}", "email": f"p{i}@uni-{i}.example", "institution": f"University {i}",
              "timezone": "Europe/London", "hours": "09:00-17:00", **change}
    return PERSON.format(**fields)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["match", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_written_groups_validate_with_the_example_service(tmp_path: Path, capsys) -> None:
    """DIR with a service.toml: the groups join it and `friendtor validate` accepts the folder."""
    out = tmp_path / "config"
    out.mkdir()
    shutil.copy(EXAMPLE_SERVICE, out / "service.toml")
    code, text, err = run(capsys, str(SOCIETY), "--size", "4-6", "--out", str(out), "--month", "2027-03")
    assert code == 0, err
    assert "Compared with a random split" in text
    config = load_config(out)
    assert sum(len(g.members) for g in config.groups.values()) == 12
    assert main(["validate", "--config", str(out)]) == 0
    assert (out / "service.toml").read_bytes() == EXAMPLE_SERVICE.read_bytes()


def test_written_groups_validate_in_a_new_folder(tmp_path: Path, capsys) -> None:
    """A new DIR becomes a config folder with groups/ only (service.toml is optional)."""
    out = tmp_path / "new" / "config"
    code, _, err = run(capsys, str(SOCIETY), "--size", "4-6", "--out", str(out), "--month", "2027-03")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["groups"]
    assert len(load_config(out).groups) == 2


def test_json_report_places_everyone_once(tmp_path: Path, capsys) -> None:
    """--json: every roster email is in one group or unplaced; each group names its file and interest."""
    text = "".join(person(i) for i in range(1, 12))
    roster = tmp_path / "roster.toml"
    roster.write_text(text)
    code, out, err = run(capsys, str(roster), "--size", "5-5", "--out", str(tmp_path / "c"), "--json",
                         "--month", "2027-03")
    assert code == 0, err
    report = json.loads(out)
    emails = [e for g in report["groups"] for e in g["members"]] + [u["email"] for u in report["unplaced"]]
    assert sorted(emails) == sorted(f"p{i}@uni-{i}.example" for i in range(1, 12))
    assert len(report["unplaced"]) == 1 and report["unplaced"][0]["reason"]
    assert all(Path(g["file"]).is_file() and g["interest"] == "research" for g in report["groups"])
    assert set(report["random"]) == set(report["formed"])


def test_same_seed_same_files(tmp_path: Path, capsys) -> None:
    """Two runs with one seed write byte-identical group files."""
    files = []
    for name in ("a", "b"):
        assert run(capsys, str(SOCIETY), "--size", "3-4", "--out", str(tmp_path / name), "--seed", "7",
                   "--month", "2027-10")[0] == 0
        files.append({p.name: p.read_bytes() for p in (tmp_path / name / "groups").iterdir()})
    assert files[0] == files[1]


def test_existing_groups_are_never_overwritten(tmp_path: Path, capsys) -> None:
    """DIR/groups with files in it: refused before any work, and the files are untouched."""
    out = tmp_path / "config"
    (out / "groups").mkdir(parents=True)
    (out / "groups" / "k-club.toml").write_text("keep me")
    code, _, err = run(capsys, str(SOCIETY), "--size", "4-6", "--out", str(out))
    assert code == 2 and "already holds files" in err and len(err.splitlines()) == 1
    assert [p.name for p in (out / "groups").iterdir()] == ["k-club.toml"]


TOO_MANY = "".join(person(i) for i in range(1, 10_002))
BAD_ROSTERS = {
    "duplicate emails": (person(1) + person(2) + person(3, email="P1@uni-1.example"), ["people[3] (Person 3).email: p1@uni-1.example is already used by people[1]"]),
    "unknown zone": (person(1) + person(2, timezone="Europe/Londn"), ["people[2] (Person 2).timezone: unknown time zone 'Europe/Londn' (did you mean 'Europe/London'?)"]),
    "bad hours": (person(1) + person(2, hours="17:00-09:00"), ["people[2] (Person 2).hours: hours '17:00-09:00' end before they start"]),
    "hours not a time": (person(1, hours="9 to 5") + person(2), ["people[1] (Person 1).hours: hours must look like"]),
    "two problems, two lines": (person(1, timezone="Mars/Olympus") + person(2, email="not-an-email"),
                                ["people[1] (Person 1).timezone: unknown time zone", "people[2] (Person 2).email: not a valid email"]),
    "empty roster": ("# nobody yet\n", ["people: no [[people]] entries"]),
    "empty list": ("people = []\n", ["people: no [[people]] entries"]),
    "entries not tables": ("people = [1, 2]\n", ["people[1]: expected a table", "people[2]: expected a table"]),
    "people not a list": ("people = \"everyone\"\n", ["people: expected a list"]),
    "missing institution": (person(1).replace('institution = "University 1"\n', ""), ["people[1] (Person 1).institution: required key is missing"]),
    "unknown key": (person(1).replace("hours =", "hourz =") + person(2), ["people[1] (Person 1).hourz: unknown key (did you mean 'hours'?)"]),
    "interest without letters": (person(1).replace('["research"]', '["---"]') + person(2), ["people[1] (Person 1).interests[1]: '---' has no letters or digits"]),
    "interests not a list": (person(1).replace('["research"]', '"research"') + person(2), ["people[1] (Person 1).interests: expected a list"]),
    "too many interests": (person(1).replace('["research"]', repr([f"topic {i}" for i in range(25)])) + person(2), ["people[1] (Person 1).interests: 25 interests; list at most 20"]),
    "line break in a name": (person(1, name="Ann\\nBcc: x@evil.example") + person(2), ["people[1].name: must be one line"]),
    "invalid TOML": ("[[people]]\nname = Maya Chen\n", ["line 2, column 8: invalid TOML"]),
    "not UTF-8": (b"[[people]]\nname = \"\xff\"\n", ["line 2: not UTF-8 text"]),
    "too many people": (TOO_MANY, ["people: 10,001 people; a roster holds at most 10,000"]),
    "too many bytes": ("#" + "x" * (8 * 1024 * 1024) + "\n", ["larger than 8 MB; a roster holds at most"]),
    "size cannot be met": (person(1) + person(2) + person(3), ["people: 3 people cannot make one group of at least 5"]),
}


@pytest.mark.parametrize("case", list(BAD_ROSTERS), ids=list(BAD_ROSTERS))
def test_bad_rosters_are_one_line_each(case: str, tmp_path: Path, capsys) -> None:
    """A bad roster: exit 2, one line per problem naming the file and the entry, nothing written."""
    text, expected = BAD_ROSTERS[case]
    roster = tmp_path / "roster.toml"
    roster.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, out, err = run(capsys, str(roster), "--size", "5-8", "--out", str(tmp_path / "out"))
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected):
        assert line.startswith(f"{roster}: ") and want in line, line
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert "x" * 100 not in err  # the file's content is not quoted back


def test_many_bad_entries_are_cut_after_fifty_lines(tmp_path: Path, capsys) -> None:
    """Two hundred bad zones: fifty lines, then how many more, not two hundred lines."""
    roster = tmp_path / "roster.toml"
    roster.write_text("".join(person(i, timezone="Nowhere/City") for i in range(1, 201)))
    code, _, err = run(capsys, str(roster), "--size", "5-8", "--out", str(tmp_path / "out"))
    lines = err.splitlines()
    assert code == 2 and len(lines) == 51 and lines[-1].endswith("and 150 more problems; fix these first")


@pytest.mark.parametrize("argv, expected", [
    (["--size", "8-5"], "--size: 8-5: MIN is larger than MAX; write it as 5-8"),
    (["--size", "five"], "--size: 'five' is not a size"),
    (["--size", "1-3"], "a peer group needs at least 2 people"),
    (["--size", "5-500"], "at most 50 people per group"),
    (["--size", "5-8", "--month", "2027-13"], "--month: '2027-13' is not a month"),
    (["--size", "5-8", "--month", "9999-01"], "too far from today"),
    (["--size", "5-8", "--seed", "x"], "--seed: invalid int value"),
])
def test_bad_arguments_are_one_line(argv: list[str], expected: str, tmp_path: Path, capsys) -> None:
    """Bad --size, --month or --seed: one line, exit 2, before the roster is read."""
    with pytest.raises(SystemExit) if "--seed" in argv else _nothing():
        code, _, err = run(capsys, str(SOCIETY), *argv, "--out", str(tmp_path / "out"))
    if "--seed" in argv:
        err = capsys.readouterr().err
    else:
        assert code == 2
    assert len(err.splitlines()) == 1 and expected in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("what", ["missing", "folder", "pipe"])
def test_roster_that_is_not_a_file(what: str, tmp_path: Path, capsys) -> None:
    """A roster path that does not exist, is a folder or a FIFO (never waited on): one line, exit 2."""
    path = tmp_path / "roster.toml"
    if what == "folder":
        path.mkdir()
    elif what == "pipe":
        os.mkfifo(path)
    code, _, err = run(capsys, str(path), "--size", "5-8", "--out", str(tmp_path / "out"))
    assert code == 2 and len(err.splitlines()) == 1 and "roster.toml: cannot read the file: " in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_names_and_interests_with_quotes_and_backslashes_round_trip(tmp_path: Path, capsys) -> None:
    """Text a person typed (quotes, backslashes, TOML syntax, accents) is written as TOML strings
    and comments that read back as typed: the group file validates, nothing is injected."""
    odd = [person(1, name='Zoë \\"Z\\" O\'Neil'), person(2, name="Back\\\\slash", institution='Inst = \\"x\\"'),
           person(3), person(4)]
    text = "".join(odd).replace('["research"]', '["\\"; evil = 1 #", "Ünïcode research"]')
    roster = tmp_path / "roster.toml"
    roster.write_text(text, encoding="utf-8")
    out = tmp_path / "c"
    code, _, err = run(capsys, str(roster), "--size", "4", "--out", str(out), "--month", "2027-03")
    assert code == 0, err
    [group] = load_config(out).groups.values()
    assert {m.name for m in group.members} == {'Zoë "Z" O\'Neil', "Back\\slash", "Person 3", "Person 4"}
    assert 'Inst = "x"' in {m.institution for m in group.members}
    assert '"; evil = 1 #' in group.mission  # the typed text, as text: no key was injected (unknown keys fail)


def test_a_group_that_cannot_meet_is_reported(tmp_path: Path, capsys) -> None:
    """Four people whose hours never overlap: the group is written, and the report says that no
    time reaches the quorum and who cannot come."""
    zones = ["Pacific/Auckland", "Europe/London", "America/New_York", "Asia/Kolkata"]
    roster = tmp_path / "roster.toml"
    roster.write_text("".join(person(i, timezone=z, hours="09:00-10:00") for i, z in enumerate(zones, 1)))
    code, text, err = run(capsys, str(roster), "--size", "4", "--out", str(tmp_path / "c"), "--month", "2027-03")
    assert code == 0, err
    assert "best time: no time reaches the quorum, 1 of 4 free" in text
    assert "groups reaching quorum" in text and text.count("cannot come then:") == 3


def test_an_unwritable_out_folder_is_one_line(tmp_path: Path, capsys) -> None:
    """--out under a file: one line, exit 2."""
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, str(SOCIETY), "--size", "4-6", "--out", str(tmp_path / "file" / "sub"))
    assert code == 2 and len(err.splitlines()) == 1 and "--out" in err
