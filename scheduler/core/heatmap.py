"""An availability heatmap of a cycle's window: who is free when, at a glance. Pure.

Rows are members (named with their zone), columns are grid steps in the group's zone, one
panel per window date. Each cell is one of four states, painted by the slot finder's own
per-member rules (`slots.paint_member`) with the meeting length set to one grid step, so
a cell is "free" exactly when a meeting of one grid step starting there would find the
member free. Nothing here re-derives hours, holidays or busy time.

The grid is small plain data (`Heatmap`) that round-trips through JSON: the planner,
which has the calendars, stores it with an alert; dispatch, which has none, draws it at
send time. It is drawn as SVG text (for `friendtor slots --heatmap x.svg` and browsers)
and as PNG with Pillow (for email: Gmail and Outlook do not show SVG). Both drawings come
from one list of shapes, so they cannot disagree.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from scheduler.core.availability import NO_CALENDAR, Availability
from scheduler.core.config import Group
from scheduler.core.cycles import Window
from scheduler.core.slots import (
    AWAY,
    BUSY,
    FREE,
    HOLIDAY,
    NOT_WORKDAY,
    OUTSIDE,
    TENTATIVE,
    UNKNOWN,
    paint_member,
    candidate_starts,
)

# Cell states, one character each so a grid row is a short string in a stored payload.
AVAILABLE, MAYBE, TAKEN, OFF = "F", "T", "B", "-"
_STATE = {FREE: AVAILABLE, TENTATIVE: MAYBE, UNKNOWN: MAYBE, BUSY: TAKEN,
          OUTSIDE: OFF, NOT_WORKDAY: OFF, HOLIDAY: OFF, AWAY: OFF}

# Okabe–Ito blue and orange, told apart with every common colour-vision deficiency; the
# tentative blue differs from "free" in lightness too, so it survives greyscale printing.
LEGEND = (
    (AVAILABLE, "#0072B2", "free"),
    (MAYBE, "#9CCBEA", "tentative or calendar unknown"),
    (TAKEN, "#E69F00", "busy"),
    (OFF, "#E4E4E4", "outside hours, away, holiday or day off"),
)
COLOUR = {state: colour for state, colour, _ in LEGEND}
INK, FAINT, RULE = "#2b2b2b", "#6b6b6b", "#9a9a9a"


@dataclass(frozen=True)
class Heatmap:
    """States per member per grid step, on each window date, in the group's zone."""

    title: str
    zone: str                                      # the group's zone: the columns' clock
    step: int                                      # minutes per column
    first: int                                     # minutes after local midnight of column 0
    members: tuple[tuple[str, str], ...]           # (name, zone) per row
    days: tuple[tuple[date, tuple[str, ...]], ...]  # each date, one state string per member

    @property
    def columns(self) -> int:
        return len(self.days[0][1][0]) if self.days and self.members else 0

    def state(self, day: int, member: int, column: int) -> str:
        return self.days[day][1][member][column]

    def to_payload(self) -> dict[str, Any]:
        """JSON-able and compact (a dozen members over six dates is about 4 KB)."""
        return {"title": self.title, "zone": self.zone, "step": self.step, "first": self.first,
                "members": [list(m) for m in self.members],
                "days": [[d.isoformat(), list(rows)] for d, rows in self.days]}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> Heatmap:
        return cls(p["title"], p["zone"], p["step"], p["first"], tuple(tuple(m) for m in p["members"]),
                   tuple((date.fromisoformat(d), tuple(rows)) for d, rows in p["days"]))


def heatmap(group: Group, window: Window, availability: Mapping[str, Availability],
            title: str | None = None) -> Heatmap:
    """The grid for a window. Columns span, across all its dates, the hours (group zone) in
    which at least one member could attend; hours nobody can attend are left off."""
    step = group.meetings.grid_minutes
    tz = group.tz
    painted: list[tuple[date, dict[int, list[str]]]] = []
    lo, hi = None, None
    for day in window.dates:
        starts = candidate_starts(group, Window(window.key, (day,)), None)
        codes = [paint_member(m, availability.get(m.email, NO_CALENDAR), starts, step * 60)
                 for m in group.members]
        by_minute: dict[int, list[str]] = {}
        for i, s in enumerate(starts):
            local = datetime.fromtimestamp(s, tz)
            # A DST fall-back day repeats an hour: the first pass through it is kept.
            minute = local.hour * 60 + local.minute
            column = by_minute.setdefault(minute, [_STATE[c[i]] for c in codes])
            if any(x in (AVAILABLE, MAYBE) for x in column):
                lo = minute if lo is None else min(lo, minute)
                hi = minute + step if hi is None else max(hi, minute + step)
        painted.append((day, by_minute))
    if lo is None:  # nobody can come at all: show a working day so the picture still says so
        lo, hi = 8 * 60, 18 * 60
    lo, hi = lo // 60 * 60, -(-hi // 60) * 60  # whole hours read better
    n = len(group.members)
    days = []
    for day, by_minute in painted:
        cols = [by_minute.get(minute, [OFF] * n) for minute in range(lo, hi, step)]  # DST gap: off
        days.append((day, tuple("".join(col[k] for col in cols) for k in range(n))))
    if title is None:
        title = f"{group.name}: who is free"
    return Heatmap(title, group.timezone, step, lo, tuple((m.name, m.timezone) for m in group.members),
                   tuple(days))


# --- drawing ----------------------------------------------------------------------------------

FONT = 13
CELL_H = 18
PAD = 16


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclass(frozen=True)
class _Text:
    x: float
    y: float          # baseline
    text: str
    size: int = FONT
    bold: bool = False
    anchor: str = "start"  # start | middle | end
    fill: str = INK


@dataclass(frozen=True)
class _Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float = 1.0


def _text_width(text: str, size: int) -> float:
    """A generous estimate (DejaVu Sans is ~0.6 em per character) so labels never overlap."""
    return len(text) * size * 0.6


def _day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


WIDE, EMAIL = 960, 600  # target widths: a browser window, and the column of an HTML email


def layout(h: Heatmap, target: int = WIDE) -> tuple[int, int, list]:
    """Width, height and shapes of the picture: one panel per date, stacked.

    Cells shrink (down to 4 px) so that the picture fits `target` pixels where it can: an
    email client scales a wider image down, and its labels with it."""
    labels = [f"{name} ({zone})" for name, zone in h.members]
    label_w = max([_text_width(s, FONT) for s in labels] + [80]) + 12
    ncols = h.columns
    cell_w = max(4, min(16, int(target - 2 * PAD - label_w) // max(ncols, 1)))
    per_hour = 60 // h.step if h.step <= 60 else 1
    hour_every = 1 if cell_w * per_hour >= 34 else 2 if cell_w * per_hour >= 17 else 3
    grid_x = PAD + label_w
    grid_w = ncols * cell_w
    legend_items = [(colour, text) for _, colour, text in LEGEND]
    legend_w = sum(14 + 6 + _text_width(t, 12) * 0.92 + 18 for _, t in legend_items)
    width = int(max(grid_x + grid_w + PAD, PAD * 2 + legend_w, PAD * 2 + _text_width(h.title, 17)))

    shapes: list = [_Rect(0, 0, width, 0, "#ffffff")]  # height fixed below
    y = PAD + 17
    shapes.append(_Text(PAD, y, h.title, 17, bold=True))
    y += 20
    shapes.append(_Text(PAD, y, f"Columns: time in {h.zone}, {h.step} minutes each. "
                                f"Rows: members, named with their own zone.", 12, fill=FAINT))
    y += 14
    for day, rows in h.days:
        y += 22
        shapes.append(_Text(PAD, y, _day_label(day), 14, bold=True))
        y += 16
        # Hour labels above the grid, in the group's zone.
        for c in range(ncols):
            minute = h.first + c * h.step
            if minute % 60 == 0 and (minute // 60) % hour_every == 0:
                shapes.append(_Text(grid_x + c * cell_w, y, f"{minute // 60 % 24:02d}", 11,
                                    anchor="middle", fill=FAINT))
        y += 5
        top = y
        for k, row in enumerate(rows):
            shapes.append(_Text(grid_x - 8, y + CELL_H - 5, labels[k], FONT, anchor="end"))
            # Runs of one state are drawn as one rectangle: fewer shapes, smaller SVG.
            c = 0
            while c < len(row):
                e = c
                while e < len(row) and row[e] == row[c]:
                    e += 1
                shapes.append(_Rect(grid_x + c * cell_w, y, (e - c) * cell_w, CELL_H - 2, COLOUR[row[c]]))
                c = e
            y += CELL_H
        # Hour rules over the cells, so hours can be followed down the rows.
        for c in range(ncols + 1):
            if (h.first + c * h.step) % 60 == 0:
                shapes.append(_Line(grid_x + c * cell_w, top - 2, grid_x + c * cell_w, y, "#ffffff", 1.0))
        shapes.append(_Line(PAD, y + 6, grid_x + grid_w, y + 6, RULE, 1.0))  # date separator
        y += 6
    y += 22
    x = PAD
    for colour, text in legend_items:
        shapes.append(_Rect(x, y - 11, 14, 14, colour))
        shapes.append(_Text(x + 20, y, text, 12))
        x += 14 + 6 + _text_width(text, 12) * 0.92 + 18
    height = int(y + PAD)
    shapes[0] = _Rect(0, 0, width, height, "#ffffff")
    return width, height, shapes


def to_svg(h: Heatmap, target: int = WIDE) -> str:
    """A standalone SVG document (opens in any browser)."""
    width, height, shapes = layout(h, target)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Verdana, Arial, sans-serif">',
           f"<title>{escape(h.title)}</title>"]
    for s in shapes:
        if isinstance(s, _Rect):
            out.append(f'<rect x="{s.x:g}" y="{s.y:g}" width="{s.w:g}" height="{s.h:g}" fill="{s.fill}"/>')
        elif isinstance(s, _Line):
            out.append(f'<line x1="{s.x1:g}" y1="{s.y1:g}" x2="{s.x2:g}" y2="{s.y2:g}" '
                       f'stroke="{s.stroke}" stroke-width="{s.width:g}"/>')
        else:
            weight = ' font-weight="bold"' if s.bold else ""
            out.append(f'<text x="{s.x:g}" y="{s.y:g}" font-size="{s.size}" text-anchor="{s.anchor}" '
                       f'fill="{s.fill}"{weight}>{escape(s.text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=16)
def _font(size: int, bold: bool):
    from PIL import ImageFont

    for name in (("DejaVuSans-Bold.ttf", "Arial Bold.ttf") if bold else ("DejaVuSans.ttf", "Arial.ttf")):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)  # Pillow's own font: plainer, still readable


@functools.lru_cache(maxsize=8)  # each of a group's coordinators gets the same picture: draw it once
def to_png(h: Heatmap, scale: int = 2, target: int = WIDE) -> bytes:
    """The same picture as PNG, drawn at `scale` (2: sharp on high-density screens)."""
    from PIL import Image, ImageDraw  # only the email and --heatmap x.png need Pillow

    width, height, shapes = layout(h, target)
    image = Image.new("RGB", (width * scale, height * scale), "#ffffff")
    draw = ImageDraw.Draw(image)
    for s in shapes:
        if isinstance(s, _Rect):
            if s.w > 0 and s.h > 0:
                draw.rectangle([s.x * scale, s.y * scale, (s.x + s.w) * scale - 1, (s.y + s.h) * scale - 1],
                               fill=s.fill)
        elif isinstance(s, _Line):
            draw.line([s.x1 * scale, s.y1 * scale, s.x2 * scale, s.y2 * scale], fill=s.stroke,
                      width=max(1, round(s.width * scale)))
        else:
            font = _font(s.size * scale, s.bold)
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[s.anchor]
            draw.text((s.x * scale, s.y * scale), s.text, font=font, fill=s.fill, anchor=anchor)
    buf = io.BytesIO()
    # The picture has a few flat colours plus anti-aliased text on white, so a fixed palette (those
    # colours and ramps from white to each ink) keeps it exact and smooth, at a fraction of RGB's
    # size. Mapping to a known palette takes ~10 ms where searching one (quantize(32)) took 250.
    image.quantize(palette=_palette(), dither=Image.Dither.NONE).save(buf, "PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _palette():
    from PIL import Image

    def rgb(colour: str) -> tuple[int, int, int]:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)

    colours = [rgb(c) for c in ("#ffffff", *COLOUR.values())]
    for ink in (INK, FAINT, RULE):  # anti-aliased edges of text on white: 16 steps to each ink
        colours += [tuple(round(255 + (v - 255) * k / 16) for v in rgb(ink)) for k in range(1, 17)]
    flat = [v for c in dict.fromkeys(colours) for v in c]
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat + flat[:3] * (256 - len(flat) // 3))  # padded with white, never nearer
    return palette


def size(h: Heatmap, scale: int = 2, target: int = WIDE) -> tuple[int, int]:
    """The PNG's size in pixels; HTML shows it at 1/scale of that."""
    width, height, _ = layout(h, target)
    return width * scale, height * scale
