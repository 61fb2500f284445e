"""`friendtor status`: what is coming, what went out, what is stuck and why. Pure."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from scheduler.core.config import Config
from scheduler.core.meetings import Meeting
from scheduler.app.store import parse_iso


def status_text(config: Config, meetings: dict[tuple[str, str], Meeting], sends: list[dict[str, Any]],
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
        mine = [d for d in sends if d["group"] == gid]
        sent = [d for d in mine if d["status"] == "sent"]
        by_key = Counter((d["key"], d["kind"]) for d in sent)
        last_sent = {}
        for d in sent:
            last_sent[d["key"]] = max(last_sent.get(d["key"], ""), d["sent_at"] or "")
        for (key, kind), n in sorted(by_key.items(), key=lambda kv: last_sent[kv[0][0]]):
            when = parse_iso(last_sent[key]).astimezone(tz)
            lines.append(f"  sent    {when:%Y-%m-%d %H:%M}  {kind:<10} {key}  to {n}")
        for d in sorted((d for d in mine if d["status"] in ("pending", "sending", "retry")),
                        key=lambda d: d["created"]):
            extra = f", next try {parse_iso(d['next_attempt']).astimezone(tz):%Y-%m-%d %H:%M}" \
                if d["status"] == "retry" else ""
            why = f": {d['last_error']}" if d.get("last_error") else ""
            lines.append(f"  {d['status']:<7} {d['kind']:<10} {d['key']} to {d['recipient']} "
                         f"(attempt {d['attempts']}{extra}){why}")
        for d in sorted((d for d in mine if d["status"] in ("failed", "skipped")), key=lambda d: d["updated"]):
            lines.append(f"  {d['status']:<7} {d['kind']:<10} {d['key']} to {d['recipient']}: {d['last_error']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
