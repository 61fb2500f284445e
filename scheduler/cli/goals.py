"""`friendtor goals`: a coordinator lists, marks done, removes and exports the group's items.

Goals, agenda items and celebrations come from two places: the group file (`[[goals]]`,
`[[milestones]]`, `[[agenda]]`) and members' replies (kept in the state, scheduler.app.replystate).
The list shows both, each member's open goals numbered as their emails number them. A reply's
item has the ID the state gave it (stable: it never depends on the item's place in the list);
an entry of the group file is named by its table and place (`goal-2` is the second [[goals]]),
and is changed by editing that file, never here. `--done`/`--remove` go through the state, or,
while the service runs, through the hand-over folder, like `attendance`.
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from scheduler.cli.arguments import group_of, load
from scheduler.core.config import Config, Group
from scheduler.core.errors import UsageError
from scheduler.core.goals import goal_order, member_goals

TEXT_WIDTH = 60          # of an item's text in the table (--json gives it whole)
_FILE_ID = re.compile(r"(goal|milestone|agenda)-([0-9]{1,6})")
_FILE_TABLE = {"goal": "goals", "milestone": "milestones", "agenda": "agenda"}


def cmd_goals(args: argparse.Namespace) -> int:
    config = load(args)
    group = group_of(config, args.group)
    action = "done" if args.done is not None else "remove" if args.remove is not None else None
    if args.member is not None and (action or args.export):
        raise UsageError("--member only narrows the list; leave it out with --done, --remove and --export")
    member = _member(group, args.member) if args.member is not None else None
    path = config.path(config.service.state)
    items, meetings = _stored(path, group.id)
    if action:
        return _change(config, group, path, items, action, args.done if action == "done" else args.remove)
    if args.export:
        print(export_toml(group, items), end="")
        return 0
    rows = list_rows(group, items, meetings, member)
    if args.json:
        # ASCII: a member's text cannot carry a C1 control or a lone surrogate to the terminal.
        print(json.dumps(rows, indent=2))
    else:
        print(_table(group, rows, member))
    return 0


def _member(group: Group, email: str) -> str:
    found = group.member(email.strip())
    if found is None:
        raise UsageError(f"--member: {_shown(email)} is not a member of {group.id}; members: "
                         + ", ".join(m.email for m in group.members))
    return found.email.lower()


def _stored(path: Path, gid: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The group's items from replies and its stored meetings (by cycle); none before a first run."""
    if not path.exists():
        return [], {}
    from scheduler.app.store import Store

    with Store(path, lock=False) as store:
        return store.replies.items(gid), {c: m for (g, c), m in store.meetings().items() if g == gid}


# --- the list ---------------------------------------------------------------------------------

def list_rows(group: Group, items: list[dict[str, Any]], meetings: dict[str, Any],
              member: str | None) -> list[dict[str, Any]]:
    """Every goal (each member's open ones first, numbered as emails number them, then done
    ones), then agenda items, celebrations and time away; config entries and reply items."""
    by_id = {d["id"]: d for d in items}
    marks = {d.get("goal"): d for d in items if d["kind"] == "done"}
    goals = member_goals(group, items)
    # Members in the file's order, then anyone who has left the group but still has goals
    # from replies (listed, so a coordinator can remove them).
    order = [m.email.lower() for m in group.members]
    order += sorted({g.member.lower() for _, g in goals} - set(order))
    rows: list[dict[str, Any]] = []
    for email in order:
        if member is not None and email != member:
            continue
        mine = [(ref, g) for ref, g in goals if g.member.lower() == email]
        open_ = sorted((rg for rg in mine if not rg[1].done), key=lambda rg: goal_order(rg[1]))
        done = sorted((rg for rg in mine if rg[1].done), key=lambda rg: goal_order(rg[1]))
        for n, (ref, goal) in enumerate(open_ + done, start=1):
            row = {"id": _goal_id(ref), "kind": "goal", "member": email, "text": goal.text,
                   "due": goal.due.isoformat() if goal.due else None, "done": goal.done,
                   "number": n if not goal.done else None,
                   "source": _source(group, by_id.get(ref.partition(":")[2]) if ref.startswith("item:") else None)}
            mark = marks.get(ref)
            if mark is not None:
                row["done_by"] = {"id": mark["id"], **_source(group, mark)}
            rows.append(row)
    refs = {ref for ref, _ in goals}
    for d in items:  # a done mark whose goal is gone (its text edited in the file): removable
        if d["kind"] == "done" and d.get("goal") not in refs and (member is None or d["member"].lower() == member):
            rows.append({"id": d["id"], "kind": "done", "member": d["member"].lower(), "text": d["text"],
                         "source": _source(group, d)})
    for i, a in enumerate(group.agenda, start=1):
        if member is None:
            rows.append({"id": f"agenda-{i}", "kind": "agenda", "member": None, "text": a.text,
                         "meeting": _meeting(a.cycle, meetings), "source": _source(group, None)})
    for i, m in enumerate(group.milestones, start=1):
        if member is None or m.member.lower() == member:
            rows.append({"id": f"milestone-{i}", "kind": "celebrate", "member": m.member.lower(), "text": m.text,
                         "date": m.date.isoformat(), "source": _source(group, None)})
    for d in items:
        if d["kind"] in ("goal", "done") or (member is not None and d["member"].lower() != member):
            continue
        row = {"id": d["id"], "kind": d["kind"], "member": d["member"].lower(), "text": d["text"],
               "source": _source(group, d)}
        if d["kind"] in ("agenda", "celebrate"):
            row["meeting"] = _meeting(d.get("cycle"), meetings)
        if d["kind"] == "away":
            row.update(first=d.get("first"), last=d.get("last"), text=_away_text(d))
        rows.append(row)
    return rows


def _goal_id(ref: str) -> str:
    kind, _, rest = ref.partition(":")
    return rest if kind == "item" else f"goal-{int(rest.partition(':')[0]) + 1}"


def _source(group: Group, d: dict[str, Any] | None) -> dict[str, Any]:
    if d is None:
        return {"from": "group file", "file": f"groups/{group.id}.toml"}
    received = datetime.fromisoformat(d["received"].replace("Z", "+00:00")).astimezone(group.tz).date()
    by = "coordinator" if d.get("reply") == "coordinator" else "reply"
    return {"from": by, "member": d["member"].lower(), "date": received.isoformat()}


def _meeting(cycle: str | None, meetings: dict[str, Any]) -> dict[str, Any] | None:
    if cycle is None:
        return None  # a config agenda item without a cycle stands on every agenda
    m = meetings.get(cycle)
    return {"cycle": cycle, "start": m.start.astimezone(UTC).isoformat() if m is not None and not m.cancelled
            else None}


def _away_text(d: dict[str, Any]) -> str:
    first, last = d.get("first"), d.get("last")
    return f"away {first}" + (f" to {last}" if last and last != first else "")


def _table(group: Group, rows: list[dict[str, Any]], member: str | None) -> str:
    if not rows:
        whose = f" for {member}" if member else ""
        return f"{group.name}: no goals, agenda items or celebrations{whose} yet."
    head = ("#", "ID", "KIND", "MEMBER", "STATUS", "TEXT", "SOURCE")
    lines = [head]
    for r in rows:
        lines.append((str(r.get("number") or ""), r["id"], r["kind"], _shown(r["member"] or "(group)", 40),
                      _status(group, r), _shown(r["text"], TEXT_WIDTH), _source_text(r)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = [f"{group.name} ({group.id}): goals, agenda items and celebrations; IDs for --done/--remove"]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1] for line in lines]
    return "\n".join(line.rstrip() for line in out)


def _status(group: Group, r: dict[str, Any]) -> str:
    if r["kind"] == "goal":
        due = f", due {r['due']}" if r.get("due") else ""
        return ("done" if r["done"] else "open") + due
    if r["kind"] in ("agenda", "celebrate") and "meeting" in r:
        m = r["meeting"]
        if m is None:
            return "every agenda" if r["kind"] == "agenda" else "next agenda"
        when = (f" ({datetime.fromisoformat(m['start']).astimezone(group.tz):%a %d %b %Y})"
                if m.get("start") else "")
        return f"meeting {m['cycle']}{when}"
    if r["kind"] == "celebrate":
        return f"on {r['date']}"
    return ""


def _source_text(r: dict[str, Any]) -> str:
    s = r["source"]
    text = s["file"] if s["from"] == "group file" else f"{s['from']} {s['date']}"
    if "done_by" in r:
        d = r["done_by"]
        text += f"; done by {d['from']} {d['date']} ({d['id']})"
    return text


def _shown(text: str, width: int = 60) -> str:
    """Text a member wrote, safe for a terminal: control characters (an escape sequence) become
    '?', and a long text is cut."""
    safe = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in text)
    return safe if len(safe) <= width else safe[: width - 1] + "…"


# --- --done / --remove ------------------------------------------------------------------------

def _change(config: Config, group: Group, path: Path, items: list[dict[str, Any]], action: str,
            item_id: str) -> int:
    from scheduler.app.handover import store_or_hand_over
    from scheduler.app.replystate import change_items, goals_record

    flag = f"--{action}"
    wanted = item_id.strip().lower()
    file_id = _FILE_ID.fullmatch(wanted)
    if file_id is not None:
        raise UsageError(_file_entry(config, group, file_id.group(1), int(file_id.group(2)), action, flag))
    found = next((d for d in items if d["id"] == wanted), None)
    if found is None:
        known = "; IDs are listed by `friendtor goals " + group.id + "`"
        where = "" if path.exists() else " (the service has not run yet, so no reply has been read)"
        raise UsageError(f"{flag}: {group.id} has no item {_shown(item_id, 40)!r}{where}{known}")
    record = goals_record(group.id, action, wanted)
    now = datetime.now(UTC)

    def store_it(store) -> None:
        why = change_items(store.replies, record, now)
        if why is not None:
            raise UsageError(f"{flag}: not changed: {why}")

    if action == "done" and found["kind"] != "goal":  # said before any write, as the service would
        raise UsageError(f"{flag}: {wanted} is not a goal (it is {found['kind']}); only goals are marked done, "
                         f"use --remove {wanted} to take it away")
    where = store_or_hand_over(path, "goals", record, store_it, now)
    did = "marked done" if action == "done" else "removed"
    print(f"{group.name}: {found['kind']} {wanted} ({_shown(found['text'] or _away_text(found), 50)}) {did}; {where}")
    return 0


def _file_entry(config: Config, group: Group, kind: str, n: int, action: str, flag: str) -> str:
    table = _FILE_TABLE[kind]
    entries = {"goals": group.goals, "milestones": group.milestones, "agenda": group.agenda}[table]
    file = config.folder / "groups" / f"{group.id}.toml"
    if not 1 <= n <= len(entries):
        return f"{flag}: {file} has no [[{table}]] number {n} (it has {len(entries)})"
    how = "set done = true in it" if action == "done" else "delete that block"
    if action == "done" and kind != "goal":
        how = "only goals are marked done; delete that block to take it away"
    return (f"{flag}: {kind}-{n} is written in {file} ([[{table}]] number {n}, {_shown(entries[n - 1].text, 50)!r}); "
            f"edit that file: {how}")


# --- --export ---------------------------------------------------------------------------------

def export_toml(group: Group, items: list[dict[str, Any]]) -> str:
    """The reply items as TOML blocks to append to the group file: goals (done ones with
    done = true), celebrations as [[milestones]], agenda items as [[agenda]]. Done marks on
    the file's own goals and time away cannot be blocks: they are comments saying what to edit."""
    members = {m.email.lower() for m in group.members}
    marks = {d.get("goal") for d in items if d["kind"] == "done"}
    out = [f"# {len(items)} item(s) from members' replies to {group.id}; after appending them, remove each",
           f"# from the state (friendtor goals {group.id} --remove ID) so they are not counted twice."]
    for d in items:
        member, tag = d["member"].lower(), _comment(d["id"])
        if member not in members:
            out.append(f"# {tag}: skipped, {_comment(member)} is no longer a member")
            continue
        if d["kind"] == "goal":
            out += ["", f"[[goals]]  # {tag}", f"member = {toml_string(member)}", f"text = {toml_string(d['text'])}"]
            if _day(d.get("due")):
                out.append(f"due = {_day(d.get('due'))}")
            if f"item:{d['id']}" in marks:
                out.append("done = true")
        elif d["kind"] == "celebrate":
            day = datetime.fromisoformat(d["received"].replace("Z", "+00:00")).astimezone(group.tz).date()
            out += ["", f"[[milestones]]  # {tag}", f"member = {toml_string(member)}",
                    f"text = {toml_string(d['text'])}", f"date = {day.isoformat()}"]
        elif d["kind"] == "agenda":
            name = next((m.name for m in group.members if m.email.lower() == member), member)
            out += ["", f"[[agenda]]  # {tag}", f"text = {toml_string(name + ': ' + d['text'])}"]
            if d.get("cycle"):
                out.append(f"cycle = {toml_string(d['cycle'])}")
        elif d["kind"] == "done" and re.fullmatch(r"config:[0-9]{1,6}:.*", str(d.get("goal", "")), re.S):
            n = int(str(d["goal"]).split(":")[1]) + 1
            out.append(f"# {tag}: [[goals]] number {n} ({_comment(d['text'])}) is done: set done = true there")
        elif d["kind"] == "away":
            out.append(f"# {tag}: {_comment(member)} is away: add "
                       f"{{ from = {_day(d.get('first'))}, to = {_day(d.get('last'))} }} to their away list")
    return "\n".join(out) + "\n"


def _day(text: Any) -> str | None:
    """A stored date as TOML writes it (a bare date), or None when it is not one."""
    try:
        return date.fromisoformat(text).isoformat() if isinstance(text, str) and text else None
    except ValueError:
        return None


def toml_string(text: str) -> str:
    """A TOML basic string that reads back as the same one-line text the config accepts:
    quotes and backslashes escaped; control characters (which a config text may not hold)
    become spaces; a lone surrogate becomes U+FFFD."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch == "\x85":
            out.append(" ")
        elif unicodedata.category(ch) == "Cs":
            out.append("\ufffd")
        else:
            out.append(ch)
    return '"' + ("".join(out).strip() or "?") + '"'


def _comment(text: str) -> str:
    """Text for a TOML comment: one line, no control characters."""
    return _shown(text, 60)
