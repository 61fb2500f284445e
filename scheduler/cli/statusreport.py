"""`friendtor status`: what is coming, what went out, what is stuck and why. Pure."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from collections.abc import Mapping, Sequence

from scheduler.core.config import Config
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import FINISHED, OPEN, OutboxRecord, Status


def status_text(config: Config, meetings: Mapping[tuple[str, str], Meeting], sends: Sequence[OutboxRecord],
                now: datetime, only: str | None = None) -> str:
    lines: list[str] = []
    for gid, group in sorted(config.groups.items()):
        if only and gid != only:
            continue
        tz = group.tz
        lines.append(f"{group.name} ({gid}), times in {group.timezone}")
        upcoming = sorted((m for (g, _), m in meetings.items() if g == gid and m.end > now),
                          key=lambda m: m.start)
        if upcoming:
            for m in upcoming:
                s, e = m.start.astimezone(tz), m.end.astimezone(tz)
                state = "cancelled" if m.cancelled else f"sequence {m.sequence}"
                if m.moved_from is not None:
                    state += f", moved from {m.moved_from.astimezone(tz):%a %d %b %H:%M}"
                lines.append(f"  meeting {m.cycle}: {s:%a %d %b %Y %H:%M}–{e:%H:%M} ({state})")
        else:
            lines.append("  no meeting scheduled yet")
        mine = [r for r in sends if r.group == gid]
        sent = [r for r in mine if r.status == Status.SENT and r.sent_at is not None]
        by_key = Counter((r.key, str(r.kind)) for r in sent)
        last_sent: dict[str, datetime] = {}
        for r in sent:
            last_sent[r.key] = max(last_sent.get(r.key, r.sent_at), r.sent_at)
        for (key, kind), n in sorted(by_key.items(), key=lambda kv: last_sent[kv[0][0]]):
            when = last_sent[key].astimezone(tz)
            lines.append(f"  sent    {when:%Y-%m-%d %H:%M}  {kind:<10} {key}  to {n}")
        for r in sorted((r for r in mine if r.status in OPEN), key=lambda r: r.created):
            extra = (f", next try {r.next_attempt.astimezone(tz):%Y-%m-%d %H:%M}"
                     if r.status == Status.RETRY and r.next_attempt else "")
            why = f": {r.last_error}" if r.last_error else ""
            lines.append(f"  {r.status:<7} {r.kind:<10} {r.key} to {r.recipient} (attempt {r.attempts}{extra}){why}")
        for r in sorted((r for r in mine if r.status in FINISHED and r.status != Status.SENT),
                        key=lambda r: r.updated):
            lines.append(f"  {r.status:<7} {r.kind:<10} {r.key} to {r.recipient}: {r.last_error}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
