"""Members' items from replies, merged with the coordinators' config. Pure.

A reply's items are kept in the state (scheduler.app.replystate), not in the config files. For
everything that reads goals, milestones, agenda items and time away (the agenda, follow-up,
nudges, reviews, year-end numbers, the slot finder), `with_replies` gives the group as if the
coordinators had written those items into its file: a commitment is a `[[goals]]` entry, a
`done:` marks a goal done, a celebration is a `[[milestones]]` entry dated the day it arrived,
an agenda item stands on the agenda of the meeting that was next when it arrived, and time away
joins the member's `away`. Templates keep their variables; nothing new is needed to show them.

A goal's number in an email is its place among the member's open goals, sorted as every email
sorts them (by due date, undated last, then by text): `open_goals` gives that order, and a
`done: N` is read against it when the reply arrives (the numbers are not frozen per email:
only the member's own changes, or a coordinator's, can shift them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from scheduler.core.config import AgendaItem, Away, Config, Goal, Group, Milestone


def goal_order(goal: Goal) -> tuple[date, str]:
    """How every email sorts a member's open goals, and so numbers them."""
    return (goal.due or date.max, goal.text)


def goal_ref(goal: Goal, index: int) -> str:
    """How a `done` item names a goal: a config goal by its place and text, a reply's by id."""
    return f"config:{index}:{goal.text}"


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def member_goals(group: Group, items: Sequence[Mapping[str, Any]]) -> list[tuple[str, Goal]]:
    """Every goal of the group, (ref, goal), config goals first, a done item applied."""
    done = {d.get("goal") for d in items if d["kind"] == "done"}
    out = [(ref, g.model_copy(update={"done": True}) if ref in done and not g.done else g)
           for i, g in enumerate(group.goals) for ref in (goal_ref(g, i),)]
    for d in items:
        if d["kind"] == "goal":
            ref = f"item:{d['id']}"
            out.append((ref, Goal.model_construct(member=d["member"], text=d["text"], due=_date(d.get("due")),
                                                  done=ref in done)))
    return out


def open_goals(group: Group, items: Sequence[Mapping[str, Any]], member: str) -> list[tuple[str, Goal]]:
    """One member's open goals, numbered 1.. in this order in every email."""
    mine = [(ref, g) for ref, g in member_goals(group, items) if g.member.lower() == member.lower() and not g.done]
    return sorted(mine, key=lambda rg: goal_order(rg[1]))


def resolve(ref: int | str, goals: Sequence[tuple[str, Goal]]) -> tuple[str, Goal] | str:
    """The open goal a `done:` names (its number, or a unique start of its text), or why not."""
    if isinstance(ref, int):
        if 1 <= ref <= len(goals):
            return goals[ref - 1]
        return f"you have no open goal number {ref}." if goals else "you have no open goals."
    start = ref.casefold().rstrip(".")
    found = [g for g in goals if g[1].text.casefold().startswith(start)]
    if len(found) == 1:
        return found[0]
    exact = [g for g in found if g[1].text.casefold() == start]
    if len(exact) == 1:
        return exact[0]
    return ("more than one open goal starts that way; write a few more words, or its number." if found
            else "none of your open goals starts that way; write its number instead.")


def with_replies(group: Group, items: Sequence[Mapping[str, Any]]) -> Group:
    """The group as if its members' reply items were written in its file (see above)."""
    if not items:
        return group
    names = {m.email.lower(): m.name for m in group.members}
    milestones = [Milestone.model_construct(member=d["member"], text=d["text"],
                                            date=datetime.fromisoformat(d["received"].replace("Z", "+00:00"))
                                            .astimezone(group.tz).date())
                  for d in items if d["kind"] == "celebrate"]
    agenda = [AgendaItem.model_construct(text=f"{names.get(d['member'], d['member'])}: {d['text']}",
                                         cycle=d.get("cycle"))
              for d in items if d["kind"] == "agenda" and d.get("cycle")]
    away: dict[str, list[Away]] = {}
    for d in items:
        if d["kind"] == "away":
            away.setdefault(d["member"].lower(), []).append(
                Away.model_construct(start=date.fromisoformat(d["first"]), end=date.fromisoformat(d["last"])))
    members = tuple(m.model_copy(update={"away": (*m.away, *away[m.email.lower()])}) if m.email.lower() in away
                    else m for m in group.members)
    return group.model_copy(update={
        "goals": tuple(g for _, g in member_goals(group, items)),
        "milestones": (*group.milestones, *milestones),
        "agenda": (*group.agenda, *agenda),
        "members": members,
    })


def config_with_replies(config: Config, items: Mapping[str, Sequence[Mapping[str, Any]]]) -> Config:
    """Every group with its members' reply items (`items`: group id -> the group's items)."""
    if not any(items.get(gid) for gid in config.groups):
        return config
    return config.model_copy(update={"groups": {gid: with_replies(g, items.get(gid, ()))
                                                for gid, g in config.groups.items()}})
