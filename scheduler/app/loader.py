"""Reading a config folder: TOML files in, a frozen `Config` out, or every problem at once.

Errors are collected across all files and raised together as one `ConfigError`, so a
coordinator sees everything to fix in one run, and nothing from a broken folder is used.
Field paths count list entries from 1, in file order: `members[3]` is the third
`[[members]]` block.
"""

from __future__ import annotations

import errno
import gc
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import tomli
from pydantic import BaseModel, ValidationError

from scheduler.app.configpaths import CalendarFiles, calendars, resolve
from scheduler.app.files import read_capped
from scheduler.core.config import Config, Group, Service
from scheduler.core.crossref import cross_check, cross_references
from scheduler.core.errors import ConfigError, Problem
from scheduler.core.gatherings import conference_references
from scheduler.core.fields import closest, did_you_mean, show, toml_key

GROUP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DATE_HINT = "dates are written 2026-11-01, without quotes"
NAME_SHOWN = 80  # a member's name or address beside members[N] in a problem's path, at most this long


def load_config(folder: Path | str) -> Config:
    """Load and validate a config folder; raise ConfigError listing every problem."""
    # 10,000 groups are millions of objects, all kept, none in a cycle: the cyclic collector walked
    # the growing config again and again (a tenth of the time), as it did the state (statefile.Loading).
    # What is dropped meanwhile is freed by reference counting; a cycle waits for the next collection.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(folder))
    finally:
        if enabled:
            gc.enable()


def _load(folder: Path) -> Config:
    if not folder.is_dir():
        what = "is a file, not a config folder" if folder.exists() else "no such config folder"
        raise ConfigError([Problem(str(folder), "", f"{what}; pass --config DIR "
                                   "pointing at a folder that holds groups/*.toml")])
    problems: list[Problem] = []

    service = Service()
    service_file = folder / "service.toml"
    if service_file.exists():
        data = read_toml(service_file, "service.toml", problems)
        if data is not None:
            service = validate_model(Service, data, "service.toml", problems) or service
    for key, value in (("state", service.state), ("mail.maildir", service.mail.maildir)):
        resolved = resolve(value, folder)
        if isinstance(resolved, str):
            problems.append(Problem("service.toml", key, resolved))

    groups: dict[str, Group] = {}
    calendar_files = CalendarFiles(folder, service)
    # Like the shell's groups/*.toml: hidden files (editor locks such as .#k-club.toml) are not groups.
    group_files = sorted(p for p in (folder / "groups").glob("*.toml") if not p.name.startswith("."))
    if not group_files:
        problems.append(Problem("groups/", "", "no group files; add one per group, e.g. groups/k-club.toml "
                                "(see config/example/groups/)"))
    for path in group_files:
        rel = f"groups/{path.name}" if path.name.isprintable() else f"groups/{path.name!r}"
        gid = path.stem
        if not GROUP_ID.fullmatch(gid):
            problems.append(Problem(rel, "", f"file name {gid!r} is the group's id and may use only lowercase "
                                    "letters, digits and '-'; rename the file, e.g. to groups/k-club.toml"))
            continue
        data = read_toml(path, rel, problems)
        if data is None:
            continue
        if "id" in data:
            problems.append(Problem(rel, "id", "unknown key: the group's id is its file name; remove this line"))
            continue
        found: list[Problem] = []
        group = validate_model(Group, {**data, "id": gid}, rel, found)
        # Cross-references and calendar files are checked whether or not every field is right:
        # all problems in all files are reported together (a file's field problems used to hide them).
        found.extend(Problem(rel, field, msg) for field, msg in
                     (cross_check(group) if group is not None else cross_references(data)))
        found.extend(Problem(rel, field, msg) for field, msg in
                     conference_references(data.get("members"), service.conferences))
        wrong = {p.field for p in found}
        found.extend(Problem(rel, field, msg) for field, msg in calendar_files.problems(calendars(data))
                     if field not in wrong)
        problems.extend(_named(p, data) for p in found)
        if group is not None and not found:
            groups[gid] = group

    # Coordinators' template overrides are config too: a broken one must fail here, in
    # `validate` and on reload, not in a member's inbox. Imported here: reading a config
    # should not load the message pipeline that checking templates needs.
    from scheduler.app.templates import check_templates

    # The state folder keeps the hash of the last clean template set (issue 13).
    problems.extend(check_templates(folder, service.limits, service.local_folder(folder)))

    if problems:
        raise ConfigError(problems)
    return Config(folder=folder, service=service, groups=groups)


# A group file is a few KB; the bound keeps a runaway file (or a link to a log) from filling the
# service's memory on a reload. Rosters (`friendtor match`) pass their own.
CONFIG_BYTES = 1024 * 1024


def read_toml(path: Path, rel: str, problems: list[Problem], *, max_bytes: int = CONFIG_BYTES,
              too_big: str = "split it, or remove what is not configuration") -> dict[str, Any] | None:
    """The TOML table in `path`, or None with the reason added to `problems` (one line, never
    quoting the file)."""
    try:
        raw = read_capped(path, max_bytes)
    except OSError as exc:
        fix = (f"; {too_big}" if exc.errno == errno.EFBIG else
               "; make it a plain TOML file" if exc.errno == errno.EINVAL else "")
        problems.append(Problem(rel, "", f"cannot read the file: {exc.strerror}{fix}"))
        return None
    try:
        # utf-8-sig: Windows Notepad starts UTF-8 files with a byte order mark; it is not an error.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        problems.append(Problem(rel, "", f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02X}); "
                                "save the file as UTF-8"))
        return None
    try:
        # tomli is the parser tomllib was made from, compiled (mypyc): the same TOML 1.0 and the
        # same answers in a third of the time (parsing was a fifth of loading 10,000 groups). Below
        # 2.4 (pyproject.toml): later ones read TOML 1.1, which the standard library of 3.11 refuses.
        # A file it refuses is parsed again by tomllib, whose words the messages below rely on.
        return tomli.loads(text)
    except Exception:  # noqa: BLE001 (whatever it was, tomllib says it as before)
        pass
    try:
        return tomllib.loads(text)
    except RecursionError:  # a = [[[[...: the parser recurses once per level
        problems.append(Problem(rel, "", "invalid TOML: lists or tables nested too deeply; "
                                "a config file needs only a few levels of [ ] and { }"))
        return None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 9)"; lead with the line, where the eye goes.
        msg = _plain_toml_words(str(exc))
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
        end = re.search(r"\(at end of document\)$", msg)
        if m:
            line, column = int(m.group(1)), int(m.group(2))
            start = _date_like_at(text, line, column) if re.match(r"Expected newline|Invalid date", msg) else None
            if start is not None:  # 2026-13-01, 2026-1-5, 1/11/2026: tomllib only sees a broken number
                msg = f"line {line}, column {start}: invalid TOML: not a date; {DATE_HINT}"
            else:
                msg = f"line {line}, column {column}: invalid TOML: {msg[:m.start()].strip()}"
        elif end:
            last = text.rstrip().count("\n") + 1  # tomllib counts lines by LF, as we do here
            msg = f"line {last} (end of file): invalid TOML: {msg[:end.start()].strip()}"
        else:
            msg = f"invalid TOML: {msg}"
        if "Invalid value" in msg:  # what an unquoted string (name = Maya Chen) looks like to tomllib
            msg += " (strings need quotes, e.g. name = \"Maya Chen\")"
        problems.append(Problem(rel, "", msg))
        return None


def _date_like_at(text: str, line: int, column: int) -> int | None:
    """The column where a date-like value (digits and -, / or .) starts, when tomllib's error at
    `line`, `column` falls inside one; None otherwise."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    row = lines[line - 1]
    i = min(max(column - 1, 0), len(row))
    token = re.compile(r"[0-9A-Za-z:+./-]")
    while i > 0 and (i >= len(row) or not token.match(row[i])) and token.match(row[i - 1]):
        i -= 1
    start = i
    while start > 0 and token.match(row[start - 1]):
        start -= 1
    # A year first (2026-13-01, 2026/11/01, 2026-11) or last (1/11/2026, 11.01.2026); not 0.6.
    return start + 1 if re.match(r"\d{4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}", row[start:]) else None


def _plain_toml_words(msg: str) -> str:
    """tomllib names a table as a Python tuple, ('meetings',); say [meetings]."""
    m = re.match(r"Cannot declare \((.*)\) twice", msg)
    if m:
        keys = re.findall(r"'((?:[^'\\]|\\.)*)'", m.group(1))
        if keys:
            return f"table [{'.'.join(keys)}] is declared twice; keep one and move its keys there" + msg[m.end():]
    return msg


def validate_model(model: type[BaseModel], data: dict[str, Any], rel: str, problems: list[Problem]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # `coordinator = [...]` is one mistake, not two: the unknown key's line suggests
        # 'coordinators', so the line saying 'coordinators' is missing would only repeat it.
        missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
        explained = set()
        for err in errors:
            if err["type"] == "extra_forbidden":
                guess = _intended_key(model, err["loc"])
                if guess is not None and (*err["loc"][:-1], guess) in missing:
                    explained.add((*err["loc"][:-1], guess))
        # Pydantic counts only the entries that validated, so one bad coordinator in a list of
        # one also reads as "too short"; the entry's own error is the one to show.
        has_child_error = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
        for err in errors:
            if err["type"] == "missing" and tuple(err["loc"]) in explained:
                continue
            if err["type"] == "too_short" and tuple(err["loc"]) in has_child_error:
                continue
            problems.append(Problem(rel, _field_path(err["loc"]), _message(model, err)))
        return None


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + toml_key(part)  # a key with a line break stays on one line
    return out


def _intended_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """For an unknown key at `loc`, the known key next to it that was probably meant."""
    owner = _model_at(root, loc[:-1])
    return closest(str(loc[-1]), _keys_of(owner)) if owner else None


# Pydantic's wording names Python types ("a valid tuple", "instance of Meetings"); the person
# reading these wrote TOML, so say it in TOML's words.
_EXPECTED = {
    "tuple_type": "expected a list in square brackets, e.g. [\"a\", \"b\"]",
    "list_type": "expected a list in square brackets, e.g. [\"a\", \"b\"]",
    "model_type": "expected a table: a [section] of keys, or { key = value, ... }",
    "model_attributes_type": "expected a table: a [section] of keys, or { key = value, ... }",
    "dict_type": "expected a table: a [section] of keys, or { key = value, ... }",
    "string_type": "expected text in quotes",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def _message(root: type[BaseModel], err: dict[str, Any]) -> str:
    kind, loc, value = err["type"], err["loc"], err.get("input")
    got = f", got {show(value)}"
    if kind == "friendtor":
        return err["msg"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key in ("password", "pass", "secret", "token"):
            return ("unknown key: passwords are never read from config files; put the password in an "
                    "environment variable and name it with password_env = \"FRIENDTOR_SMTP_PASSWORD\"")
        owner = _model_at(root, loc[:-1])
        names = _keys_of(owner) if owner else []
        hint = did_you_mean(key, names)
        return f"unknown key{hint}" if hint else f"unknown key; known keys here: {', '.join(names)}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind in _EXPECTED:
        return _EXPECTED[kind] + got
    if kind.startswith("date"):
        return "expected a date such as 2026-01-13 (no quotes, no time of day)" + got
    if kind == "too_short":
        n = (err.get("ctx") or {}).get("min_length", 1)
        return f"list at least {n} entr{'y' if n == 1 else 'ies'}" + got
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        return f"{err['msg'][0].lower()}{err['msg'][1:]}{got}{hint}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}" + (got if value is not None else "")


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items() if name != "id"]


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (for suggesting known keys)."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        model = _find_model(current)
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current = field.annotation
    return _find_model(current)


def _find_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _find_model(typing.get_args(tp)[0])
    if origin in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _named(problem: Problem, data: dict[str, Any]) -> Problem:
    """`members[2].email` as `members[2] (Rafael Souza).email`, and `goals[3]` (or a milestone)
    as `goals[3] (ben@uni-b.example)`, in the path and where a message refers to another entry
    ("already used by members[2] (Ben Okoro)"): in a file of twelve members, a number alone sends
    the coordinator counting blocks. Only a one-line name or address of bounded length is shown."""
    def label(m: re.Match[str]) -> str:
        items = data.get(m.group(1))
        index = int(m.group(2)) - 1
        entry = items[index] if isinstance(items, list) and 0 <= index < len(items) else None
        text = entry.get("name" if m.group(1) == "members" else "member") if isinstance(entry, dict) else None
        if not isinstance(text, str) or not text.strip() or not text.isprintable() or len(text) > NAME_SHOWN:
            return m.group(0)
        return f"{m.group(0)} ({text.strip()})"

    entry = re.compile(r"\b(members|goals|milestones)\[(\d+)\](?! \()")
    return Problem(problem.file, entry.sub(label, problem.field, count=1) if entry.match(problem.field) else problem.field,
                   re.sub(r"\b(members)\[(\d+)\](?=[;,:) ]|$)(?! \()", label, problem.message))
