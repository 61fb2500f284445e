"""From the search's index groups to what `friendtor match` writes and reports. Pure.

Each formed group becomes a `Group` (the same model the config loader validates into): its
name, id and mission come from its shared interest, its zone is the one most members live in,
its coordinator is the member free at the most times the group can meet (a proposal: the
report says to confirm it), and it meets monthly for an hour on weekdays at the default
quorum. Then the slot finder itself (`find_slots`, no calendars, the whole month) checks that
a time reaches the quorum, and names who cannot come to the best one.

The report compares each group with a random split of the same roster into the same sizes:
hours in the month at which the quorum can meet, institutions per group, and interest fit
(the share of members who hold the group's interest).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from scheduler.core.config import Group, Meetings
from scheduler.core.cycles import range_window
from scheduler.core.matching import GRID, Pool, best_count, form, month_dates, plan_sizes, quorate, random_split
from scheduler.core.roster import Roster
from scheduler.core.slots import find_slots

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


@dataclass(frozen=True)
class Metrics:
    """How one group (formed or random) fares."""

    size: int
    interest_fit: float       # share of members holding the group's most common interest
    institutions: int         # distinct institutions
    quorum_hours: float       # hours of the month at which a meeting can start with the quorum
    best: int                 # most members free at one start
    stage_fit: float = 1.0    # share of members who gave a stage that hold the group's most common one

    @classmethod
    def of(cls, pool: Pool, members: Sequence[int]) -> Metrics:
        _, shared = pool.main_interest(members)
        bits = [pool.bits[i] for i in members]
        best, _ = best_count(bits, pool.full)
        stages = Counter(s for s in (pool.stage[i] for i in members) if s is not None)
        return cls(len(members), round(shared / len(members), 4) if shared >= 2 else 0.0,
                   len({pool.institution[i] for i in members}),
                   bin(quorate(bits, pool.full)).count("1") * GRID / 3600, best,
                   round(max(stages.values()) / sum(stages.values()), 4) if stages else 1.0)


@dataclass(frozen=True)
class Formed:
    group: Group
    interest: str | None          # the shared interest's label, or None
    metrics: Metrics
    best_start: datetime | None   # the slot finder's best start in the month (UTC), None if no time reaches quorum
    cannot_come: tuple[tuple[str, str], ...]   # (email, why) for members not free at the best start


@dataclass(frozen=True)
class Unplaced:
    email: str
    name: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    month: str
    seed: int
    formed: tuple[Formed, ...]
    unplaced: tuple[Unplaced, ...]
    baseline: tuple[Metrics, ...]
    evaluations: int
    merged: tuple[tuple[str, tuple[str, ...]], ...]   # interest label, and the other spellings counted as it

    def summary(self, which: str) -> dict[str, float]:
        rows = [f.metrics for f in self.formed] if which == "formed" else list(self.baseline)
        n = len(rows) or 1
        return {
            "groups": len(rows),
            "interest_fit": round(sum(m.interest_fit for m in rows) / n, 3),
            "institutions_per_member": round(sum(m.institutions / m.size for m in rows) / n, 3),
            "quorum_hours": round(sum(m.quorum_hours for m in rows) / n, 2),
            "groups_reaching_quorum": sum(m.quorum_hours > 0 for m in rows),
            "free_at_best": round(sum(m.best / m.size for m in rows) / n, 3),
            "stage_fit": round(sum(m.stage_fit for m in rows) / n, 3),
        }


def match(roster: Roster, lo: int, hi: int, year: int, month: int, seed: int) -> Outcome:
    """Form groups of lo..hi people from the roster for meetings in `month` (see `matching`)."""
    people = roster.people
    pool, groups, unplaced, evaluations = form(people, lo, hi, year, month, seed)
    labels = roster.labels()
    ordered = sorted(groups, key=lambda g: (labels.get(pool.main_interest(g)[0] or "", "~"),
                                            min(people[i].email for i in g)))
    used: Counter[str] = Counter()
    formed = tuple(_formed(pool, g, labels, used, year, month) for g in ordered)
    sizes = plan_sizes(len(people), lo, hi)
    left = len(people) - sum(sizes)
    groups = f"{len(sizes)} group{'s' if len(sizes) != 1 else ''} of {hi}"
    reason = (f"{len(people)} people cannot all be placed in groups of {lo}-{hi}: {groups} leave{'s' if len(sizes) == 1 else ''} {left} over, "
              "and this person fit the formed groups least; add people to the roster or widen --size")
    return Outcome(
        month=f"{year}-{month:02d}", seed=seed, formed=formed,
        unplaced=tuple(Unplaced(people[i].email, people[i].name, reason) for i in sorted(unplaced)),
        baseline=tuple(Metrics.of(pool, g) for g in random_split(len(people), sizes, seed)),
        evaluations=evaluations, merged=_merged(roster, labels))


def _formed(pool: Pool, members: list[int], labels: dict[str, str], used: Counter[str], year: int,
            month: int) -> Formed:
    people = [pool.people[i] for i in sorted(members, key=lambda i: pool.people[i].email)]
    key, shared = pool.main_interest(members)
    label = labels[key] if key and shared >= 2 else None
    stem = _slug(label) if label else "peer-group"
    used[stem] += 1
    slug = f"{stem}-{used[stem]}"
    zones = Counter(p.timezone for p in people)
    zone = min(zones.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    bits = {p.email: pool.bits[i] for i, p in zip(sorted(members, key=lambda i: pool.people[i].email), people)}
    can_meet = quorate(list(bits.values()), pool.full)
    coordinator = max(people, key=lambda p: (bin(bits[p.email] & can_meet).count("1"), [-ord(c) for c in p.email]))
    if label:
        name = f"{_capital(label)} group {used[stem]}"
        mission = (f"Peers in {_inline(label)} meeting monthly: each of us sets a written goal in "
                   f"{_inline(label)}, and the group helps every member reach it.")
    else:
        name = f"Peer group {used[stem]}"
        mission = "Peers meeting monthly: each of us sets a written goal, and the group helps every member reach it."
    first, last = month_dates(year, month)
    group = Group(id=slug, name=name, mission=mission, timezone=zone, coordinators=(coordinator.email,),
                  started=first, meetings=Meetings(weekdays=WEEKDAYS),
                  members=tuple(p.as_member() for p in people))
    best = find_slots(group, range_window(group, first, last), {}, top=1)
    best_start = best[0].start if best and best[0].viable else None
    cannot = tuple((v.email, v.reason) for v in best[0].verdicts if v.status != "available") if best else ()
    return Formed(group, label, Metrics.of(pool, members), best_start, cannot)


def _slug(label: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:50].strip("-")
    return stem or "peer-group"


def _capital(label: str) -> str:
    return label[:1].upper() + label[1:]


def _inline(label: str) -> str:
    """A label inside a sentence: "Grant writing" reads "grant writing"; "QI projects" stays."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def _merged(roster: Roster, labels: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """For the report: which differently written interests were counted as one."""
    from scheduler.core.roster import interest_key

    spellings: dict[str, set[str]] = {}
    for p in roster.people:
        for phrase in p.interests:
            spellings.setdefault(interest_key(phrase), set()).add(" ".join(phrase.split()))
    return tuple((labels[k], tuple(sorted(s - {labels[k]}))) for k, s in sorted(spellings.items())
                 if len(s) > 1)
