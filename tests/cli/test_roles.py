"""Rotating facilitator and note taker: who takes each role, validation, and the emails that name them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler.compose import context as ctx
from scheduler.core.cycles import next_key
from scheduler.core.config import Group
from scheduler.core.meetings import Meeting
from scheduler.app.templates import load_templates
from test_validate import GROUP, mutate, problems, validate

NAMES = ["Ana", "Ben", "Cai", "Dee"]


def grp(roles: dict | None = None, cadence: str = "monthly", away: dict | None = None) -> Group:
    members = [{"name": n, "email": f"{n.lower()}@uni.example", "timezone": "Europe/London",
                **({"away": [away[n]]} if away and n in away else {})} for n in NAMES]
    return Group.model_validate({
        "id": "g", "name": "G", "timezone": "Europe/London", "started": date(2027, 1, 12),
        "coordinators": ["ana@uni.example"], "members": members, "meetings": {"cadence": cadence},
        **({"roles": roles} if roles else {}),
    })


def names(group: Group, cycle: str, start: datetime | None = None) -> tuple[str | None, str | None]:
    r = ctx.roles_for(group, cycle, start)
    return (r["facilitator"].name if r["facilitator"] else None, r["note_taker"].name if r["note_taker"] else None)


def test_rotation_over_twelve_cycles_walks_members_in_file_order():
    """Facilitator advances one member per month from `started`; the note taker is next month's facilitator."""
    g = grp({"facilitator": "rotate", "note_taker": "rotate"})
    key, seen = "2027-01", []
    for _ in range(12):
        seen.append(names(g, key))
        key = next_key(g, key)
    assert [f for f, _ in seen] == NAMES * 3
    assert [n for _, n in seen] == (NAMES[1:] + NAMES[:1]) * 3
    assert all(f != n for f, n in seen)


def test_rotation_counts_weekly_and_biweekly_cycles():
    """For weekly groups a cycle is a week, for biweekly a fortnight, counted from the cycle of `started`."""
    weekly = grp({"facilitator": "rotate"}, cadence="weekly")
    assert [names(weekly, k)[0] for k in ("2027-W02", "2027-W03", "2027-W06")] == ["Ana", "Ben", "Ana"]
    biweekly = grp({"facilitator": "rotate"}, cadence="biweekly")
    assert [names(biweekly, k)[0] for k in ("2027-W02", "2027-W04", "2027-W06")] == ["Ana", "Ben", "Cai"]


def test_rotation_skips_members_away_on_the_meeting_date():
    """A member away that day is passed over for both roles, and the other role still goes to someone else."""
    g = grp({"facilitator": "rotate", "note_taker": "rotate"},
            away={"Ana": {"from": date(2027, 1, 10), "to": date(2027, 1, 20)}})
    start = datetime(2027, 1, 13, 15, tzinfo=UTC)
    assert names(g, "2027-01", start) == ("Ben", "Cai")
    assert names(g, "2027-01") == ("Ana", "Ben")  # without a date nobody is known to be away


def test_fixed_person_and_none():
    """A member's email fixes the role; "none" (the default) leaves it empty; a rotating role steps past the fixed one."""
    g = grp({"facilitator": "ben@uni.example"})
    assert [names(g, k) for k in ("2027-01", "2027-02")] == [("Ben", None), ("Ben", None)]
    assert names(grp(), "2027-03") == (None, None)
    g = grp({"facilitator": "ben@uni.example", "note_taker": "rotate"})
    assert [names(g, k)[1] for k in ("2027-01", "2027-02", "2027-03")] == ["Ana", "Cai", "Cai"]
    g = grp({"facilitator": "rotate", "note_taker": "ana@uni.example"})
    assert [names(g, k) for k in ("2027-01", "2027-02")] == [("Ben", "Ana"), ("Ben", "Ana")]


def test_both_roles_always_differ():
    """Whatever the settings and absences, one person never holds both roles in a meeting."""
    for fac in ("rotate", "ana@uni.example", "none"):
        for note in ("rotate", "ben@uni.example", "ana@uni.example", "none"):
            g = grp({"facilitator": fac, "note_taker": note},
                    away={"Ben": {"from": date(2027, 1, 1), "to": date(2027, 12, 31)}})
            key = "2027-01"
            for _ in range(8):
                f, n = names(g, key, datetime(int(key[:4]), int(key[5:]), 14, 12, tzinfo=UTC))
                assert f is None or f != n, (fac, note, key)
                key = next_key(g, key)


ROLES_AT_END = "\n[roles]\nfacilitator = \"rotate\"\nnote_taker = \"ben@uni-b.example\"\n"


@pytest.mark.parametrize(("roles", "where", "words"), [
    ('facilitator = "zoe@uni-z.example"', "roles.facilitator: ", ["zoe@uni-z.example is not a member", "rotate"]),
    ('note_taker = "ana@uni-a.example"\nfacilitator = "ana@uni-a.example"', "roles.note_taker: ",
     ["already the facilitator"]),
    ('facilitator = "everyone"', "roles.facilitator: ", ['"rotate"', '"none"']),
], ids=["not-a-member", "same-person", "not-an-email"])
def test_bad_role_in_config_is_one_line_with_exit_2(write_config_folder, capsys, roles, where, words):
    """A role naming someone outside the group, both roles on one person, or a stray word: exit 2, one line, field path."""
    text = mutate(GROUP, "[reviews]", f"[roles]\n{roles}\n\n[reviews]")
    result = validate(write_config_folder({"g.toml": text}), capsys)
    [line] = problems(result, 1)
    assert line.startswith(f"groups/g.toml: {where}"), line
    for word in words:
        assert word in line


def test_valid_roles_validate(write_config_folder, capsys):
    """A [roles] table with "rotate" and a member's email is accepted."""
    result = validate(write_config_folder({"g.toml": GROUP + ROLES_AT_END}), capsys)
    assert result.code == 0, result.err


def _meeting(start: datetime) -> Meeting:
    return Meeting("g", "2027-02", "g-2027-02@x", 0, start, start + timedelta(hours=1), stamp=start)


@pytest.mark.parametrize("kind", ["invite", "agenda"])
def test_names_appear_in_rendered_invite_and_agenda(kind):
    """Invite and agenda say "Facilitator: X · Notes: Y" in text and HTML, and say nothing when roles are unused."""
    meeting = _meeting(datetime(2027, 2, 10, 15, tzinfo=UTC))
    templates = load_templates(None)
    for roles, text_line, html_bits in (
        ({"facilitator": "rotate", "note_taker": "rotate"}, "Facilitator: Ben · Notes: Cai",
         ["Facilitator: <strong>Ben</strong>", "Notes: <strong>Cai</strong>"]),
        ({"note_taker": "dee@uni.example"}, "Notes: Dee", ["Notes: <strong>Dee</strong>"]),
        (None, None, []),
    ):
        g = grp(roles)
        me = g.members[0]
        base = ctx.base(g, me, "friendtor")
        context = (ctx.for_invite(base, g, me, meeting) if kind == "invite"
                   else ctx.for_agenda(base, g, me, meeting, date(2027, 2, 8)))
        out = templates.render(kind, context)
        if text_line is None:
            assert "Facilitator" not in out.text and "Notes:" not in out.text
            assert "Facilitator" not in out.html and "Notes:" not in out.html
            continue
        assert text_line + "\n" in out.text
        for bit in html_bits:
            assert bit in out.html
