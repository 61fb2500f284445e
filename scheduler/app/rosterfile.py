"""`friendtor match`'s files: the roster it reads (bounded, every problem at once, one line
each, as `validate` reports a config folder) and the group files it writes (all or none).

The output folder is a config folder: the groups go into DIR/groups/, which must not exist
yet or be empty, so a run never mixes with, or overwrites, groups already there. A
service.toml in DIR is left alone (and validates with the groups); without one, the config
folder uses the defaults, as any config folder may.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from scheduler.app.files import fsync_folder
from scheduler.app.loader import read_toml, validate_model
from scheduler.core.config import Group
from scheduler.core.errors import ConfigError, Problem, UsageError
from scheduler.core.fields import WEEKDAYS
from scheduler.core.matchgroups import Formed
from scheduler.core.roster import MAX_PEOPLE, Person, Roster, duplicate_emails

MAX_BYTES = 8 * 1024 * 1024    # a roster of MAX_PEOPLE people takes about 3 MB
MAX_SHOWN = 50                 # problems listed before "and N more"


def read_roster(path: Path) -> Roster:
    """The roster in `path`, or ConfigError with one line per problem (at most MAX_SHOWN)."""
    rel = str(path) if str(path).isprintable() else repr(str(path))
    problems: list[Problem] = []
    data = read_toml(path, rel, problems, max_bytes=MAX_BYTES,
                     too_big=f"a roster holds at most {MAX_PEOPLE:,} people, so split it")
    if data is None:
        raise ConfigError(problems)
    people = data.get("people")
    if isinstance(people, list) and len(people) > MAX_PEOPLE:
        raise ConfigError([Problem(rel, "people", f"{len(people):,} people; a roster holds at most "
                                   f"{MAX_PEOPLE:,}, so split it (e.g. by society section)")])
    if "people" not in data or people == []:
        raise ConfigError([Problem(rel, "people", "no [[people]] entries; add one per person, with name, "
                                   "email, institution, timezone and hours")])
    roster = validate_model(Roster, data, rel, problems)
    problems.extend(Problem(rel, field, message) for field, message in duplicate_emails(data))
    if problems:
        shown = [_named(p, people) for p in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            shown.append(Problem(rel, "", f"and {len(problems) - MAX_SHOWN} more problems; fix these first"))
        raise ConfigError(shown)
    assert roster is not None
    return roster


def _named(problem: Problem, people: Any) -> Problem:
    """people[3].email as people[3] (Maya Chen).email: a number alone sends one counting blocks."""
    m = re.match(r"people\[(\d+)\]", problem.field)
    if not m or not isinstance(people, list):
        return problem
    entry = people[int(m.group(1)) - 1] if int(m.group(1)) <= len(people) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 80:
        return problem
    return Problem(problem.file, f"{m.group(0)} ({name.strip()}){problem.field[m.end():]}", problem.message)


def check_out_folder(out: Path) -> None:
    """Before any work: DIR/groups must be creatable and empty (nothing is overwritten)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; give a folder (a config folder: groups go into DIR/groups/)")
    groups = out / "groups"
    try:
        taken = groups.exists() and (not groups.is_dir() or any(groups.iterdir()))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot look into {groups}: {exc.strerror}") from None
    if taken:
        raise UsageError(f"--out {out}: {groups} already holds files; choose a new folder, or move those "
                         "groups away first (match never overwrites a group)")


def write_groups(out: Path, formed: tuple[Formed, ...], roster_people: dict[str, Person], note: str) -> list[Path]:
    """Every group file, written into a scratch folder and moved into place at once."""
    try:
        return _write_groups(out, formed, roster_people, note)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the group files: {exc.strerror or exc}; "
                         "choose a folder you can write to") from None


def _write_groups(out: Path, formed: tuple[Formed, ...], roster_people: dict[str, Person], note: str) -> list[Path]:
    check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".match-", dir=out))
    try:
        for f in formed:
            target = scratch / f"{f.group.id}.toml"
            with target.open("w", encoding="utf-8") as fh:
                fh.write(group_toml(f, roster_people, note))
                fh.flush()
                os.fsync(fh.fileno())
        groups = out / "groups"
        if groups.is_dir():
            groups.rmdir()  # empty (checked): replaced by the finished folder
        scratch.rename(groups)
        fsync_folder(out)
    except BaseException:
        for p in scratch.glob("*") if scratch.exists() else ():
            p.unlink()
        if scratch.exists():
            scratch.rmdir()
        raise
    return [out / "groups" / f"{f.group.id}.toml" for f in formed]


def _s(text: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's; the values are single-line already."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def group_toml(formed: Formed, people: dict[str, Person], note: str) -> str:
    g: Group = formed.group
    m = g.meetings
    lines = [
        f"# {note}",
        "# Check the mission and the coordinator with the group, then run `friendtor validate`.",
        f"name = {_s(g.name)}",
        f"mission = {_s(g.mission)}",
        f"timezone = {_s(g.timezone)}          # where most members are",
        f"coordinators = [{_s(g.coordinators[0])}]   # proposed: free at the most times the group can meet",
        f"started = {g.started.isoformat()}",
        "",
        "[meetings]",
        f"cadence = {_s(m.cadence)}",
        f"duration_minutes = {m.duration_minutes}",
        f"weekdays = [{', '.join(_s(WEEKDAYS[d]) for d in m.weekdays)}]",
        f"quorum = {m.quorum}",
    ]
    for member in g.members:
        person = people[member.email]
        lines += ["", "[[members]]", f"name = {_s(member.name)}", f"email = {_s(member.email)}",
                  f"institution = {_s(person.institution)}", f"timezone = {_s(member.timezone)}",
                  f"hours = {_s(_hours(person))}"]
        if person.stage:
            lines.append(f"# stage: {person.stage}")
        if person.interests:
            lines.append(f"# interests: {'; '.join(person.interests)}")
    return "\n".join(lines) + "\n"


def _hours(person: Person) -> str:
    h = person.hours
    return f"{h.start // 60:02d}:{h.start % 60:02d}-{h.end // 60:02d}:{h.end % 60:02d}"
