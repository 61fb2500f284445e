"""Cross-references inside one group file: a coordinator, a goal's or milestone's member, a role
must be one of the group's members, and no two members share an address. Pure.

They are read from the file's data, not only from a validated `Group`, so `validate` reports
them together with the field problems of the same file (a coordinator who is not a member and
a member without an email, in one run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from scheduler.core.config import Group, _role
from scheduler.core.fields import _email


def cross_check(group: Group) -> list[tuple[str, str]]:
    """Problems between fields of one group, as (field path, message); [] when consistent."""
    # A validated group's addresses are already checked and lower-case: read as they are (checked
    # again, an address written with capitals cost as much as in the file itself).
    return cross_references(as_read=True, data={
        "members": [{"email": m.email} for m in group.members],
        "coordinators": list(group.coordinators),
        "goals": [{"member": g.member} for g in group.goals],
        "milestones": [{"member": ms.member} for ms in group.milestones],
        "roles": {"facilitator": group.roles.facilitator, "note_taker": group.roles.note_taker},
    })


def cross_references(data: Mapping[str, Any], *, as_read: bool = False) -> list[tuple[str, str]]:
    """Problems between fields of one group file, as (field path, message), read from the file's
    data even when some fields are wrong, so `validate` reports them beside the field problems.
    A value that is wrong in itself (not an email, not a list) is its field's message alone:
    each mistake is said once."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    unread: list[int] = []  # members whose email is missing or wrong: a reference may mean them
    address = (lambda value, role=False: value) if as_read else _address
    for i, m in _entries(data, "members"):
        email = address(m.get("email"))
        if email is None:
            unread.append(i)
            continue
        if email in seen:
            problems.append((f"members[{i}].email",
                             f"{email} is already used by members[{seen[email]}]; each member needs their own address"))
        seen.setdefault(email, i)
    emails = ", ".join(sorted(seen)) + "".join(f" (or fix members[{i}]'s email, if it is theirs)" for i in unread[:1])
    coordinators = data.get("coordinators")
    for i, c in enumerate(coordinators if isinstance(coordinators, list | tuple) else (), 1):
        c = address(c)
        if c is not None and c not in seen:
            problems.append((f"coordinators[{i}]", f"{c} is not a member; add a [[members]] entry for them "
                             f"or use one of: {emails}"))
    for key in ("goals", "milestones"):
        for i, item in _entries(data, key):
            who = address(item.get("member"))
            if who is not None and who not in seen:
                problems.append((f"{key}[{i}].member", f"{who} is not a member of this group; use one of: {emails}"))
    roles = data.get("roles") if isinstance(data.get("roles"), Mapping) else {}
    picked = {}
    for key in ("facilitator", "note_taker"):
        who = picked[key] = address(roles.get(key, "none"), role=True)
        if who is not None and who not in ("rotate", "none") and who not in seen:
            problems.append((f"roles.{key}", f"{who} is not a member; use \"rotate\", \"none\" or one of: {emails}"))
    if picked["facilitator"] == picked["note_taker"] and picked["facilitator"] not in ("rotate", "none", None):
        problems.append(("roles.note_taker", f"{picked['note_taker']} is already the facilitator; one person "
                         "cannot do both in one meeting, so name someone else or use \"rotate\""))
    return problems


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The tables of an array of tables, numbered from 1; anything else there is a field problem."""
    items = data.get(key)
    if not isinstance(items, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(items, 1) if isinstance(item, Mapping)]


def _address(value: object, *, role: bool = False) -> str | None:
    """An email (or role) as validation normalises it; None when it is not one (its own field says why)."""
    try:
        return _role(value) if role else _email(value)
    except PydanticCustomError:
        return None
