"""What the planner asks of the outbox (core/recorded.py): over a year of three groups (monthly
with gatherings and goals, weekly, biweekly), with members leaving and coming back, meetings
moved and cancelled, and windows where no time reaches quorum, the planner asks only about
records `asked_at` the tick's `now`, so a view of those plans exactly what the whole outbox
plans. This is what lets a database hand the planner what may be due, not its history."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from builders import busy, member, utc, with_conference
from scheduler.app.loader import load_config
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.outbox import Kind, expires
from scheduler.core.planner import StateView, plan
from scheduler.core.recorded import asked_at


class Asked:
    """A `Recorded` that notes every sid the planner asks about."""

    def __init__(self, sids):
        self.sids, self.asked = sids, set()

    def __contains__(self, sid):
        self.asked.add(sid)
        return sid in self.sids


class AskedInvites(dict):
    """An `invited` mapping that notes every invite key the planner asks about."""

    def __init__(self):
        super().__init__()
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def groups(folder: Path) -> Config:
    cfg = load_config(with_conference(folder))
    people = [member("Ada", "America/St_Johns"), member("Bo", "Asia/Kolkata"), member("Cy", "Australia/Adelaide"),
              member("Di", "Europe/Berlin")]
    extra = {}
    for gid, cadence in (("w", "weekly"), ("b", "biweekly")):
        extra[gid] = Group.model_validate({
            "id": gid, "name": gid, "timezone": "Europe/London", "started": date(2026, 3, 2),
            "coordinators": [people[0]["email"]], "members": people,
            "meetings": {"cadence": cadence, "weekdays": ["tue", "wed", "thu"], "invite_days_before": 10,
                         "agenda_days_before": 1, "call_days_before": 4},
            "goals": [{"member": people[1]["email"], "text": "Draft", "due": date(2027, 2, 10)}],
        })
    return cfg.model_copy(update={"groups": {**cfg.groups, **extra}})


def without(cfg: Config, gid: str, email: str) -> Config:
    g = cfg.groups[gid]
    left = g.model_copy(update={"members": tuple(m for m in g.members if m.email != email)})
    return cfg.model_copy(update={"groups": {**cfg.groups, gid: left}})


def test_a_year_of_ticks_asks_only_about_records_not_expired_and_plans_the_same_on_them(tmp_path):
    full_cfg = groups(tmp_path / "cfg")
    k = full_cfg.groups["k-club"]
    daniel = next(m.email for m in k.members if m.email.startswith("daniel"))
    ada = full_cfg.groups["w"].members[-1].email

    def config_at(now):  # Daniel leaves k-club for a while, Di leaves the weekly group and comes back
        cfg = full_cfg
        if utc(2027, 2, 1) <= now < utc(2027, 4, 20):
            cfg = without(cfg, "k-club", daniel)
        if utc(2027, 5, 3) <= now < utc(2027, 5, 9):
            cfg = without(cfg, "w", ada)
        return cfg

    def availability(g, w):
        # Bo's calendar in the weekly group cannot be read all year: its coordinators are told once.
        if g.id == "w":
            return {g.members[1].email: Availability.unreadable("sign-in revoked", needs_fix=True)}
        if g.id == "b" and w.first.month == 6:   # nobody free for the biweekly group in June: no quorum
            lo = utc(w.first.year, w.first.month, w.first.day) - timedelta(days=1)
            hi = utc(w.last.year, w.last.month, w.last.day) + timedelta(days=2)
            return {m.email: busy(lo, hi) for m in g.members}
        return {}

    meetings, alerts, records, invited = {}, {}, {}, {}
    now, asked_expired, kinds, kinds_keys = utc(2026, 10, 1, 3), [], set(), []
    while now < utc(2027, 10, 1):
        cfg = config_at(now)
        for (g, c), m in list(meetings.items()):   # a coordinator moves one meeting and cancels another
            if (g, c) == ("k-club", "2027-06") and m.moved_from is None and now >= m.stamp + timedelta(days=3) \
                    and m.start > now + timedelta(days=2):
                meetings[(g, c)] = replace(m, start=m.start + timedelta(hours=1), end=m.end + timedelta(hours=1),
                                           sequence=m.sequence + 1, stamp=now, moved_from=m.start)
            if (g, c) == ("w", "2027-W20") and not m.cancelled and m.start > now + timedelta(days=1):
                meetings[(g, c)] = replace(m, cancelled=True, sequence=m.sequence + 1, stamp=now)
        full = StateView(dict(meetings), frozenset(records), invited_view(records, invited, lambda r: True),
                         dict(alerts))
        live = Asked(frozenset(s for s, (kind, exp) in records.items() if asked_at(kind, exp, now)))
        live_invited = invited_view(records, invited, lambda r: asked_at(*r, now))
        narrow = StateView(dict(meetings), live, live_invited, dict(alerts))
        expected = plan(cfg, full, now, availability)
        assert not expected.group_problems
        assert plan(cfg, narrow, now, availability) == expected, now
        asked_expired += [(now, s) for s in live.asked if s in records and not asked_at(*records[s], now)]
        asked_expired += [(now, key) for key in live_invited.asked
                          for s in invited.get(key, {}).values() if not asked_at(*records[s], now)]
        for m in expected.meetings:
            meetings[(m.group, m.cycle)] = m
        for g, c, d in expected.alerts:
            alerts[(g, c)] = d
        for s in expected.sends:
            records[s.sid] = (s.kind, expires(s, cfg.groups[s.group]))
            kinds.add(s.key.split(":")[0])
            kinds_keys.append(s.sid)
            if s.key.startswith("invite:"):
                invited.setdefault(s.key, {})[s.recipient] = s.sid
        now += timedelta(hours=23)
    assert asked_expired == []
    # the year went through every rule that asks about other records
    assert sum(key.startswith("calendar-problem:w:") for key in kinds_keys) == 1
    assert {"invite", "uninvite", "reinvite", "update", "cancel", "agenda", "call", "follow-up", "nudge",
            "review", "report", "alert"} <= kinds, kinds
    assert sum(not asked_at(kind, exp, now) for kind, exp in records.values()) > len(records) / 2


def invited_view(records, invited, keep) -> AskedInvites:
    """invite key -> email -> (name, zone, sent): the planner reads only whether an entry is there
    and its send time; every invite counts as sent at a fixed instant before the meetings."""
    out = AskedInvites()
    for key, by_email in invited.items():
        entries = {email: (email, "UTC", "2026-01-01T00:00:00Z") for email, sid in by_email.items()
                   if keep(records[sid])}
        if entries:
            out[key] = entries
    return out


def test_only_alerts_are_asked_about_after_they_expire():
    now = utc(2027, 3, 1)
    assert asked_at(Kind.ALERT, now - timedelta(days=400), now)
    assert asked_at(Kind.INVITE, now, now) and not asked_at(Kind.INVITE, now - timedelta(seconds=1), now)
