"""Every value that `validate` accepts can be planned: dates at the ends of the accepted
range pass, dates beyond it get one line, and the service plans such a group without an
overflow (issue: a goal due 9999-12-31 once crashed every tick for every group)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scheduler.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
GROUP = "groups/k-club.toml"


def example(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    path = folder / GROUP
    path.write_text(edit(path.read_text()))
    return folder


def one_problem(capsys: pytest.CaptureFixture[str], folder: Path) -> str:
    capsys.readouterr()
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err, out + err
    assert len(err.splitlines()) == 1, err
    return err


FAR = [
    pytest.param("due = 2026-12-15", "due = 9999-12-31", "goals[1] (maya.chen@northeast-childrens.example).due", id="goal-due-year-9999"),
    pytest.param("due = 2026-12-15", "due = 0001-01-01", "goals[1] (maya.chen@northeast-childrens.example).due", id="goal-due-year-1"),
    pytest.param("started = 2026-01-13", "started = 9999-12-31", "started", id="started-year-9999"),
    pytest.param("away = [{ from = 2027-01-11, to = 2027-04-02 }]",
                 "away = [{ from = 2027-01-11, to = 9999-12-31 }]", "away[1].to", id="away-to-year-9999"),
]


@pytest.mark.parametrize("old, new, field", FAR)
def test_dates_beyond_the_planned_years_get_one_line(tmp_path, capsys, old, new, field) -> None:
    """A date outside 1900–2199 is refused by validate with the field and the accepted range."""
    folder = example(tmp_path, lambda text: text.replace(old, new, 1))
    line = one_problem(capsys, folder)
    assert f"{GROUP}: " in line and field in line and "1900-01-01 to 2199-12-31" in line


def test_cycle_keys_beyond_the_planned_years_get_one_line(tmp_path, capsys) -> None:
    """An agenda item for cycle "9999-12" is refused like a date."""
    folder = example(tmp_path, lambda text: text + '\n[[agenda]]\ntext = "Far away"\ncycle = "9999-12"\n')
    assert "agenda" in one_problem(capsys, folder)


def extremes(text: str) -> str:
    """The example group with every date at an end of the accepted range."""
    text = text.replace("started = 2026-01-13", "started = 1900-01-01")
    text = text.replace("away = [{ from = 2027-01-11, to = 2027-04-02 }]",
                        "away = [{ from = 1900-01-01, to = 2199-12-31 }]")
    text = text.replace("due = 2026-12-15", "due = 2199-12-31").replace("due = 2026-11-30", "due = 1900-01-01")
    return text + ('\n[[milestones]]\nmember = "maya.chen@northeast-childrens.example"\n'
                   'text = "A long way off"\ndate = 2199-12-31\n'
                   '\n[[agenda]]\ntext = "Last cycle"\ncycle = "2199-12"\n')


@pytest.mark.parametrize("now", ["2026-12-02T09:00:00Z", "2000-01-01T00:00:00Z", "2199-12-28T09:00:00Z",
                                 "2199-12-31T23:00:00Z"])
def test_the_extremes_validate_accepts_can_be_planned(tmp_path, capsys, now) -> None:
    """A group whose dates sit at both ends of the accepted years is valid and plans at any instant in them."""
    folder = example(tmp_path, extremes)
    capsys.readouterr()
    assert main(["validate", "--config", str(folder)]) == 0, capsys.readouterr().err
    code = main(["run", "--dry-run", "--now", now, "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err, out + err
