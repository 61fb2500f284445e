"""Prompts on a date rather than a meeting: goal nudges, mission reviews, year-end, and the
coordinators' monthly report (with the heatmaps of alerts planned this tick). Pure.

Planned by `planner.plan` (its module docstring states their misfire rules); `out` is the
planner's builder (`send`, and `reviews` for the periods looked back on).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from scheduler.core.config import Group
from scheduler.core.cycles import Window, next_window
from scheduler.core.outbox import (REPORT_GRACE, REVIEW_GRACE, Kind, NoQuorumPayload, NudgePayload, PeriodPayload,
                                   ReportPayload, add_months, midnight)

SEND_AT = time(9, 0)                # local time for date-only prompts (nudges, reviews)
YEAR_END_AFTER_MONTHS = 6           # a group's first months are too early to ask "continue or close?"


def plan_nudges(group: Group, now: datetime, out: Any) -> None:
    days = timedelta(days=group.meetings.nudge_days_before)
    for goal in group.goals:
        if goal.done or goal.due is None:
            continue
        member = group.member(goal.member)
        if member is None:
            continue
        at = datetime.combine(goal.due - days, SEND_AT, member.tz)
        until = midnight(goal.due + timedelta(days=1), member.tz)
        if at <= now < until:
            # One nudge per member per due date, however many goals fall due that day.
            out.send(Kind.NUDGE, f"nudge:{group.id}:{goal.due.isoformat()}", group, member, at,
                     NudgePayload(goal.due))


def plan_reviews(group: Group, now: datetime, out: Any) -> None:
    today = now.astimezone(group.tz).date()
    step = group.reviews.mission_review_months
    months_in = (today.year - group.started.year) * 12 + today.month - group.started.month
    for k in range(max(1, months_in // step - 1), months_in // step + 2):  # those that can be due now
        end = add_months(group.started, k * step)
        at = datetime.combine(end, SEND_AT, group.tz)
        if at <= now < at + REVIEW_GRACE:
            start = add_months(group.started, (k - 1) * step)
            out.reviews.append((group.id, "review", start, end))
            for m in group.members:
                out.send(Kind.REVIEW, f"review:{group.id}:{end.isoformat()}", group, m, at,
                         PeriodPayload(start, end))
    if not group.reviews.year_end:
        return
    # A group started in July skips its first December (its mission review covers those months);
    # the first year-end covers everything since `started`, so no month falls between prompts.
    settled = add_months(group.started, YEAR_END_AFTER_MONTHS)
    for year in (today.year - 1, today.year):
        day = date(year, group.reviews.year_end_month, 1)
        at = datetime.combine(day, SEND_AT, group.tz)
        if settled <= day and at <= now < at + REVIEW_GRACE:
            start, end = add_months(day, -12), day - timedelta(days=1)
            start = start if settled <= start else group.started
            out.reviews.append((group.id, "year-end", start, end))
            for m in group.members:
                out.send(Kind.YEAR_END, f"year-end:{group.id}:{year}", group, m, at, PeriodPayload(start, end))


def plan_reports(group: Group, state: Any, now: datetime, availability: Any, out: Any) -> None:
    """The coordinators' monthly report, and a heatmap for each alert planned this tick.

    The heatmap grid is computed here because only the planner sees calendars; dispatch
    draws it at send time. An alert's window is read again with the same dates, which the
    service's availability cache answers without reading calendars twice.
    """
    from scheduler.core import heatmap

    grids: dict[Window, dict[str, Any]] = {}  # the coordinators' alerts about one window share its grid
    for sid in out.new_alerts:
        s = out.sends[sid]
        p = s.payload
        if s.group == group.id and isinstance(p, NoQuorumPayload) and p.heatmap is None:
            w = Window(p.cycle, p.dates)
            if w.dates:
                if w not in grids:
                    grids[w] = heatmap.heatmap(group, w, availability(group, w),
                                               f"{group.name}: who is free in {w.key}").to_payload()
                out.sends[sid] = replace(s, payload=replace(p, heatmap=grids[w]))
    out.new_alerts.clear()

    first = now.astimezone(group.tz).date().replace(day=1)
    at = datetime.combine(first, SEND_AT, group.tz)
    if not (at <= now < at + REPORT_GRACE) or group.started >= first:
        return
    key = f"report:{group.id}:{first:%Y-%m}"
    coordinators = [m for m in group.members if m.email in group.coordinators]
    if all(f"{key}|{m.email}" in state.planned for m in coordinators):
        return  # already planned: do not read calendars again for it
    payload = ReportPayload(f"{first:%Y-%m}")
    upcoming = next_window(group, now)
    if upcoming is not None:
        grid = heatmap.heatmap(group, upcoming, availability(group, upcoming),
                               f"{group.name}: who is free in {upcoming.key}")
        payload = replace(payload, heatmap=grid.to_payload())
    for m in coordinators:
        out.send(Kind.REPORT, key, group, m, at, payload)
