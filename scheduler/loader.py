"""Reading a config folder: TOML files in, a frozen `Config` out, or every problem at once.

Errors are collected across all files and raised together as one `ConfigError`, so a
coordinator sees everything to fix in one run, and nothing from a broken folder is used.
Field paths count list entries from 1, in file order: `members[3]` is the third
`[[members]]` block.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .config import Config, Group, Service, cross_check
from .errors import ConfigError, Problem
from .fields import did_you_mean

GROUP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def load_config(folder: Path | str) -> Config:
    """Load and validate a config folder; raise ConfigError listing every problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError([Problem(str(folder), "", "no such config folder; pass --config DIR "
                                   "pointing at a folder that holds groups/*.toml")])
    problems: list[Problem] = []

    service = Service()
    service_file = folder / "service.toml"
    if service_file.exists():
        data = _read_toml(service_file, "service.toml", problems)
        if data is not None:
            service = _validate(Service, data, "service.toml", problems) or service

    groups: dict[str, Group] = {}
    group_files = sorted((folder / "groups").glob("*.toml"))
    if not group_files:
        problems.append(Problem("groups/", "", "no group files; add one per group, e.g. groups/k-club.toml "
                                "(see config/example/groups/)"))
    for path in group_files:
        rel = f"groups/{path.name}"
        gid = path.stem
        if not GROUP_ID.fullmatch(gid):
            problems.append(Problem(rel, "", f"file name {gid!r} is the group's id and may use only lowercase "
                                    "letters, digits and '-'; rename the file, e.g. to groups/k-club.toml"))
            continue
        data = _read_toml(path, rel, problems)
        if data is None:
            continue
        if "id" in data:
            problems.append(Problem(rel, "id", "unknown key: the group's id is its file name; remove this line"))
            continue
        group = _validate(Group, {**data, "id": gid}, rel, problems)
        if group is None:
            continue
        problems.extend(Problem(rel, field, msg) for field, msg in cross_check(group))
        problems.extend(Problem(rel, field, msg) for field, msg in _check_files(group, folder))
        groups[gid] = group

    if problems:
        raise ConfigError(problems)
    return Config(folder=folder, service=service, groups=groups)


def _read_toml(path: Path, rel: str, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(rel, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"))
        return None
    except OSError as exc:
        problems.append(Problem(rel, "", f"cannot read the file: {exc.strerror}"))
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 9)"; lead with the line, where the eye goes.
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
        if m:
            msg = f"line {m.group(1)}, column {m.group(2)}: invalid TOML: {msg[:m.start()].strip()}"
        else:
            msg = f"invalid TOML: {msg}"
        problems.append(Problem(rel, "", msg + " (strings need quotes, e.g. name = \"Maya Chen\")"))
        return None


def _validate(model: type[BaseModel], data: dict[str, Any], rel: str, problems: list[Problem]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.append(Problem(rel, _field_path(err["loc"]), _message(model, err)))
        return None


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _message(root: type[BaseModel], err: dict[str, Any]) -> str:
    kind, loc, value = err["type"], err["loc"], err.get("input")
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
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {value!r}"
    if kind == "literal_error":
        return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {value!r}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}" + (f", got {value!r}" if value is not None else "")


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


def _check_files(group: Group, folder: Path) -> list[tuple[str, str]]:
    """Calendar files named in the group must exist (URLs are checked when read)."""
    problems = []
    for i, m in enumerate(group.members, 1):
        spec = m.calendar
        if spec is None or re.match(r"(https?://|google:|caldav:)", spec, re.I):
            continue
        path = Path(spec).expanduser()
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            problems.append((f"members[{i}].calendar", f"file {spec!r} does not exist (looked for {path}); "
                             "paths are relative to the config folder"))
    return problems
