"""The outbox: one record per message to one recipient, from planned to sent. Pure.

The planner plans `Send`s; the tick records each as an `OutboxRecord` (status PENDING);
delivery moves it on: SENDING while its batch is out, then SENT, SKIPPED (no longer due: the
meeting was cancelled, the member left), RETRY (a transient failure, tried again after
`retry_delay`) or FAILED (for good; the coordinators are told). A record is identified by
its `sid`, key|recipient: the key is deterministic (`agenda:k-club:2026-12`), so a send
already in the outbox, in any status, is never planned again. Finished records are
forgotten some time after `expires`, the instant after which no rule can plan them again.

Each kind carries a typed payload, what rendering needs besides the config and the state.
The store keeps records as JSON documents; `to_json`/`payload_from_json` are the one place
that knows their shape, and only the store calls them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.config import Group
from scheduler.core.cycles import first_day
from scheduler.core.slots import Candidate

# How long a late send may still be planned (the planner's misfire rules); expiry follows from them.
LOOKBACK = timedelta(days=45)       # cycles this far back may still owe a follow-up
FOLLOW_UP_GRACE = timedelta(days=7)
REVIEW_GRACE = timedelta(days=14)
REPORT_GRACE = timedelta(days=7)


class Kind(StrEnum):
    """Every kind of record the outbox holds; the value is what the state file says."""

    INVITE = "invite"          # also a re-invite (MeetingPayload.bump)
    UPDATE = "update"          # a moved meeting's new time
    CANCEL = "cancel"          # a cancelled meeting, or one member's copy after they left
    AGENDA = "agenda"
    CALL = "call"              # to a member: the call for agenda items, commitments and wins before a meeting
    GATHERING = "gathering"    # to members attending a conference: meet there in person (an invite)
    FOLLOW_UP = "follow-up"
    NUDGE = "nudge"            # goals falling due
    REVIEW = "review"          # mission review
    YEAR_END = "year-end"
    ALERT = "alert"            # to coordinators: no quorum, a failed send, unreadable calendars
    REPORT = "report"          # the coordinators' monthly report
    PUBLISH = "publish"        # the meeting into a shared calendar; the recipient is the calendar's name
    RECEIPT = "receipt"        # to a member: what their reply recorded (key "receipt:<the reply's Message-ID>")


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"        # its batch was out when the process stopped: sent again, same Message-ID
    RETRY = "retry"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


OPEN = (Status.PENDING, Status.SENDING, Status.RETRY)
FINISHED = (Status.SENT, Status.FAILED, Status.SKIPPED)


def sid(key: str, recipient: str) -> str:
    """A record's identity in the outbox."""
    return f"{key}|{recipient}"


# --- payloads: what each kind carries ---------------------------------------------------------

@dataclass(frozen=True)
class MeetingPayload:
    """invite, update, cancel, call, agenda, follow-up, publish, gathering: about the meeting of
    one cycle (a gathering's cycle is `gathering-<conference>`, see core/gatherings.py)."""

    cycle: str
    sequence: int | None = None   # an update: the SEQUENCE it announces (a later move supersedes it)
    bump: int = 0                 # a re-invite: added to the SEQUENCE, above the member's cancellation
    # A call for items that also asks about other groups' meetings that week: (group, cycle)s.
    also: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cycle": self.cycle}
        if self.sequence is not None:
            out["sequence"] = self.sequence
        if self.bump:
            out["bump"] = self.bump
        if self.also:
            out["also"] = [list(a) for a in self.also]
        return out


@dataclass(frozen=True)
class NudgePayload:
    due: date   # the due date of the member's goals

    def to_json(self) -> dict[str, Any]:
        return {"due": self.due.isoformat()}


@dataclass(frozen=True)
class PeriodPayload:
    """review, year-end: the period looked back on."""

    start: date
    end: date

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class NoQuorumPayload:
    """An alert that no time reaches quorum: the dates searched, the best options (as
    `planner.candidate_payload` stores them) and the window's heatmap grid, drawn at send time."""

    cycle: str
    dates: tuple[date, ...]
    options: tuple[Mapping[str, Any], ...] = ()
    heatmap: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cycle": self.cycle, "dates": [d.isoformat() for d in self.dates],
                               "options": [dict(o) for o in self.options]}
        if self.heatmap is not None:
            out["heatmap"] = dict(self.heatmap)
        return out


@dataclass(frozen=True)
class FailurePayload:
    """An alert that something did not work: a message that failed for good (`kind` is the
    failed message's), or calendars that cannot be read (`kind` "calendar", with a summary)."""

    kind: str
    name: str
    email: str
    error: str
    date: date
    summary: str | None = None

    def to_json(self) -> dict[str, Any]:
        failure = {"kind": self.kind, "name": self.name, "email": self.email, "error": self.error,
                   "date": self.date.isoformat()}
        if self.summary is not None:
            failure["summary"] = self.summary
        return {"failure": failure}

    def context(self) -> dict[str, Any]:
        """What the failure template shows (see compose.samples for an example)."""
        return self.to_json()["failure"]


@dataclass(frozen=True)
class ReportPayload:
    month: str                                  # YYYY-MM
    heatmap: Mapping[str, Any] | None = None    # the next window's grid, drawn at send time

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"month": self.month}
        if self.heatmap is not None:
            out["heatmap"] = dict(self.heatmap)
        return out


@dataclass(frozen=True)
class ReceiptPayload:
    """What one reply recorded and what it did not understand, in the words the receipt shows
    (fixed when the reply is taken: the lines not understood are nowhere else)."""

    reply: str                                      # the reply's Message-ID
    recorded: tuple[str, ...] = ()
    not_understood: tuple[tuple[str, str], ...] = ()  # (the line as written, why)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"reply": self.reply, "recorded": list(self.recorded),
                "not_understood": [list(p) for p in self.not_understood], "notes": list(self.notes)}


Payload = (MeetingPayload | NudgePayload | PeriodPayload | NoQuorumPayload | FailurePayload | ReportPayload
           | ReceiptPayload)


def candidate_payload(c: Candidate) -> dict[str, Any]:
    """A candidate as JSON-able values (stored with an alert, rendered later)."""
    return {"start": c.start.astimezone(UTC).isoformat(), "end": c.end.astimezone(UTC).isoformat(),
            "expected": c.expected, "attendance": c.attendance, "preferred": c.preferred, "viable": c.viable,
            "verdicts": [{"email": v.email, "status": v.status, "reason": v.reason,
                          "local_start": v.local_start.isoformat()} for v in c.verdicts]}


MEETING_KINDS = (Kind.INVITE, Kind.UPDATE, Kind.CANCEL, Kind.CALL, Kind.AGENDA, Kind.FOLLOW_UP, Kind.PUBLISH,
                 Kind.GATHERING)


def payload_from_json(kind: Kind, data: Mapping[str, Any]) -> Payload:
    """A stored payload as its kind's type; KeyError, TypeError or ValueError if it is not one."""
    if kind in MEETING_KINDS:
        sequence = data.get("sequence")
        return MeetingPayload(_text(data["cycle"]), None if sequence is None else _int(sequence),
                              _int(data.get("bump", 0)), tuple((_text(g), _text(c)) for g, c in data.get("also", ())))
    if kind == Kind.NUDGE:
        return NudgePayload(date.fromisoformat(data["due"]))
    if kind in (Kind.REVIEW, Kind.YEAR_END):
        return PeriodPayload(date.fromisoformat(data["start"]), date.fromisoformat(data["end"]))
    if kind == Kind.REPORT:
        return ReportPayload(_text(data["month"]), data.get("heatmap"))
    if kind == Kind.RECEIPT:
        return ReceiptPayload(_text(data["reply"]), tuple(_text(t) for t in data["recorded"]),
                              tuple((_text(a), _text(b)) for a, b in data["not_understood"]),
                              tuple(_text(t) for t in data["notes"]))
    if "failure" in data:  # an alert
        f = data["failure"]
        return FailurePayload(_text(f["kind"]), _text(f["name"]), _text(f["email"]), _text(f["error"]),
                              date.fromisoformat(f["date"]), f.get("summary"))
    return NoQuorumPayload(_text(data["cycle"]), tuple(date.fromisoformat(d) for d in data["dates"]),
                           tuple(data.get("options", ())), data.get("heatmap"))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    return value


# --- records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Addressee:
    """Who a send goes to, when that is not a member of the config: a member who left (their
    name and zone as the outbox recorded them), or a shared calendar (its name as address)."""

    name: str
    email: str
    timezone: str


@dataclass(frozen=True)
class Send:
    """One message to one recipient, as the planner plans it."""

    key: str
    kind: Kind
    group: str
    recipient: str
    name: str
    timezone: str
    due: datetime
    payload: Payload

    @property
    def sid(self) -> str:
        return sid(self.key, self.recipient)


@dataclass(frozen=True)
class OutboxRecord:
    """A planned send and how far it got."""

    key: str
    kind: Kind
    group: str
    recipient: str
    name: str
    timezone: str
    payload: Payload
    due: datetime
    created: datetime
    updated: datetime
    expires: datetime
    status: Status = Status.PENDING
    attempts: int = 0
    last_error: str | None = None
    message_id: str | None = None
    next_attempt: datetime | None = None   # RETRY only
    sent_at: datetime | None = None

    @classmethod
    def planned(cls, send: Send, group: Group, now: datetime) -> OutboxRecord:
        """A new record for `send`, planned at `now`."""
        return cls(send.key, send.kind, send.group, send.recipient, send.name, send.timezone, send.payload,
                   send.due, now, now, expires(send, group))

    @property
    def sid(self) -> str:
        return sid(self.key, self.recipient)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def channel(self) -> str:
        """The way out it takes: mail, or one shared calendar."""
        return f"publish:{self.recipient}" if self.kind == Kind.PUBLISH else "mail"

    @property
    def is_failure_alert(self) -> bool:
        return isinstance(self.payload, FailurePayload)

    def moved_on(self, status: Status, **fields: Any) -> OutboxRecord:
        """This record with a new status (and other changed fields)."""
        return replace(self, status=status, **fields)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 5, 10, 20 minutes ... up to 6 hours."""
    # The exponent is capped before it is used: 5 minutes * 2**7 is past the 6-hour cap already,
    # and an uncapped one overflows timedelta after about 40 attempts (a long outage).
    return min(timedelta(minutes=5) * 2 ** min(max(0, attempts - 1), 7), timedelta(hours=6))


def expires(send: Send, group: Group) -> datetime:
    """After this instant no rule can plan `send` again, so its outbox record may be forgotten."""
    tz = group.tz
    p = send.payload
    if isinstance(p, MeetingPayload | NoQuorumPayload):
        if p.cycle.startswith("gathering-"):  # planned at most a year before the conference
            return send.due + timedelta(days=400)
        last = _period_end(group, p.cycle)
        return midnight(last + LOOKBACK + timedelta(days=2), tz)
    if isinstance(p, NudgePayload):
        return midnight(p.due + timedelta(days=2), ZoneInfo(send.timezone))
    if isinstance(p, PeriodPayload):  # review, year-end: sent on the day after the period
        return midnight(p.end + REVIEW_GRACE + timedelta(days=3), tz)
    return send.due + timedelta(days=60)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def _period_end(group: Group, key: str) -> date:
    start = first_day(group, key)
    if group.meetings.cadence == "monthly":
        return add_months(start, 1) - timedelta(days=1)
    return start + timedelta(weeks=2 if group.meetings.cadence == "biweekly" else 1, days=-1)


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of `day` in `zone`."""
    return datetime.combine(day, time(0), zone)

