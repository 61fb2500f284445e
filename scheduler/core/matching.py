"""Forming groups from a roster (`friendtor match`): who goes with whom. Pure and deterministic.

What a group is worth, in this order (a lexicographic objective; the roster's worth is the
sum over its groups, compared as a tuple):
1. shared interest: how many members hold the group's most common interest (0 when no
   interest is held by two of them). The group's mission is written from that interest;
2. meeting: 1 when some start in the month reaches the quorum, then how many members can
   come to the best start (a monthly meeting is one time, not a different time per member);
3. diversity: how many institutions the group spans (all different where the roster allows);
4. career stage: minus the members whose stage differs from the group's most common one
   (people who gave no stage differ from nobody).

Who can come when is worked out once per person, as a bitmap over every 15-minute start of a
typical month (bit i set: free for a whole meeting from start i), painted by the slot finder's
own per-member painting (`slots.paint_member`: the member's hours on each local date, so DST
and half-hour zones come out as `slots` sees them). People with the same zone and hours share
one bitmap. How many members are free at each start is then a bit-sliced counter over the
members' bitmaps (`_planes`): a handful of integer operations per member, whatever the month's
length. The groups finally formed are checked again with `find_slots` itself (`matchgroups`).

The search: people are ordered by their most popular interest (then by UTC offset, so that
neighbours in time sit together), and cut into groups of the planned sizes; then a local
search tries, for each person, swapping with people of other groups (or the unplaced) and
moving to a group with room, keeping the first change that improves the objective, pass after
pass until none does. Small rosters try every pair; large ones a sample drawn with `seed`.
Every choice is made in a fixed order or from `random.Random(seed)`: the same roster, sizes,
month and seed give the same groups.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from itertools import chain
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.core.availability import NO_CALENDAR
from scheduler.core.config import Meetings
from scheduler.core.roster import Person, stage_key
from scheduler.core.slots import FREE, paint_member

QUORUM = Meetings().quorum           # the written groups keep the default quorum
DURATION = 60 * 60                   # and one-hour meetings
GRID = 15 * 60                       # on the slot finder's default grid
EXHAUSTIVE = 150                     # up to this many people, every pair is tried
SAMPLE = 24                          # beyond it, this many random and this many same-interest partners
MAX_PASSES = 8
MAX_EVALUATIONS = 600_000            # a bound on the search's work, counted, not timed


def month_starts(year: int, month: int) -> list[int]:
    """Every GRID start (UTC seconds) from the month's first to its last day, UTC dates."""
    first = datetime(year, month, 1, tzinfo=UTC)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return list(range(int(first.timestamp()), int(following.timestamp()), GRID))


def availability_bits(people: Sequence[Person], starts: list[int]) -> list[int]:
    """Each person's bitmap over `starts`: bit i is set when they are free for a whole meeting."""
    cache: dict[tuple, int] = {}
    out = []
    for p in people:
        key = (p.timezone, p.hours)
        if key not in cache:
            codes = paint_member(p.as_member(), NO_CALENDAR, starts, DURATION)
            cache[key] = int("".join("1" if c == FREE else "0" for c in reversed(codes)) or "0", 2)
        out.append(cache[key])
    return out


def need(size: int) -> int:
    """Members who must be free for a slot to reach the quorum (as `find_slots` counts it)."""
    return max(1, math.ceil(QUORUM * size - 1e-9))


def _planes(bitmaps: Sequence[int]) -> list[int]:
    """A bit-sliced counter: planes[j] holds bit j of how many bitmaps are set at each start."""
    planes: list[int] = []
    for carry in bitmaps:
        j = 0
        while carry:
            if j == len(planes):
                planes.append(carry)
                break
            planes[j], carry = planes[j] ^ carry, planes[j] & carry
            j += 1
    return planes


def _at_least(planes: list[int], k: int, full: int) -> int:
    """The starts where the count in `planes` is at least k (a comparator, most significant bit first)."""
    if k <= 0:
        return full
    greater, equal = 0, full
    for j in range(max(len(planes), k.bit_length()) - 1, -1, -1):
        plane = planes[j] if j < len(planes) else 0
        if (k >> j) & 1:
            equal &= plane
        else:
            greater |= equal & plane
            equal &= ~plane
    return greater | equal


def best_count(bitmaps: Sequence[int], full: int) -> tuple[int, int]:
    """(the most members free at one start, the starts where that many are free)."""
    planes = _planes(bitmaps)
    for k in range(len(bitmaps), 0, -1):
        where = _at_least(planes, k, full)
        if where:
            return k, where
    return 0, 0


def quorate(bitmaps: Sequence[int], full: int) -> int:
    """The starts at which enough members are free to reach the quorum."""
    return _at_least(_planes(bitmaps), need(len(bitmaps)), full)


@dataclass
class Pool:
    """The roster as the search sees it: per person, a bitmap, interest keys, institution, stage."""

    people: Sequence[Person]
    bits: list[int]
    full: int
    interests: list[tuple[str, ...]]
    institution: list[str]
    stage: list[str | None]

    @classmethod
    def of(cls, people: Sequence[Person], starts: list[int]) -> Pool:
        return cls(people, availability_bits(people, starts), (1 << len(starts)) - 1,
                   [p.interest_keys for p in people], [p.institution_key for p in people],
                   [stage_key(p.stage) for p in people])

    def main_interest(self, members: Sequence[int]) -> tuple[str | None, int]:
        """The interest most members hold (ties: first in sort order) and how many hold it."""
        counts = Counter(chain.from_iterable(self.interests[i] for i in members))
        if not counts:
            return None, 0
        key, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return key, n

    def shared(self, members: Sequence[int]) -> int:
        """The objective's first part: how many hold the group's main interest (0 unless two do)."""
        _, n = self.main_interest(members)
        return n if n >= 2 else 0

    def score(self, members: Sequence[int], shared: int | None = None) -> tuple[int, int, int, int, int]:
        """One group's worth (see the module docstring), a tuple compared lexicographically."""
        shared = self.shared(members) if shared is None else shared
        best, _ = best_count([self.bits[i] for i in members], self.full)
        stages = Counter(s for s in (self.stage[i] for i in members) if s is not None)
        mismatch = sum(stages.values()) - max(stages.values(), default=0)
        return (shared, int(best >= need(len(members))), best,
                len({self.institution[i] for i in members}), -mismatch)


def plan_sizes(n: int, lo: int, hi: int) -> list[int]:
    """Group sizes for n people: as even as possible, near the middle of lo..hi. When n cannot be
    split into groups of lo..hi (7 people, groups of 4-5), as many full groups as fit; the rest
    stay unplaced. [] when n < lo."""
    k_min, k_max = -(-n // hi), n // lo
    if k_max == 0:
        return []
    if k_min > k_max:
        return [hi] * k_max
    k = min(max(round(n / ((lo + hi) / 2)), k_min), k_max)
    base, extra = divmod(n, k)
    return [base + 1] * extra + [base] * (k - extra)


def _offset_minutes(p: Person, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(p.timezone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def seed_groups(pool: Pool, sizes: list[int], rng: random.Random, mid_month: datetime) -> tuple[list[list[int]], list[int]]:
    """The search's starting point: people by their most popular interest, then by UTC offset,
    cut into groups of `sizes`; whoever is left over is unplaced."""
    popularity = Counter(k for keys in pool.interests for k in keys)
    tiebreak = [rng.random() for _ in pool.people]

    def order(i: int) -> tuple:
        keys = pool.interests[i]
        primary = min(keys, key=lambda k: (-popularity[k], k)) if keys else None
        return (0, -popularity[primary], primary) if primary else (1, 0, ""), _offset_minutes(pool.people[i], mid_month), tiebreak[i]

    ordered = sorted(range(len(pool.people)), key=order)
    groups, at = [], 0
    for size in sizes:
        groups.append(ordered[at:at + size])
        at += size
    return groups, ordered[at:]


def _plus(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b))


def _minus(a: tuple, b: tuple) -> tuple:
    return tuple(x - y for x, y in zip(a, b))


@dataclass
class Search:
    """The local search's state: groups, the unplaced, and each group's cached score."""

    pool: Pool
    groups: list[list[int]]
    unplaced: list[int]
    lo: int
    hi: int
    evaluations: int = 0

    def __post_init__(self) -> None:
        self.scores = [self.pool.score(g) for g in self.groups]
        self.where = {i: gi for gi, g in enumerate(self.groups) for i in g} | {i: -1 for i in self.unplaced}

    def total(self) -> tuple:
        out: tuple = (0,) * 5
        for s in self.scores:
            out = _plus(out, s)
        return out

    def _members(self, gi: int) -> list[int]:
        return self.groups[gi] if gi >= 0 else self.unplaced

    def try_change(self, a: int, b: int | None, target: int) -> bool:
        """Swap a with b (b None: move a into group `target`); keep it when the objective improves."""
        ga = self.where[a]
        if b is not None:
            target = self.where[b]
        if ga == target:
            return False
        new_a = [i for i in self._members(ga) if i != a] + ([b] if b is not None else [])
        new_t = [i for i in self._members(target) if i != b] + [a]
        if b is None and (ga < 0 or len(new_a) < self.lo or len(new_t) > self.hi):
            return False
        self.evaluations += 1
        old = (self.scores[ga] if ga >= 0 else (0,) * 5, self.scores[target] if target >= 0 else (0,) * 5)
        # The first part is cheap and decides most changes: the rest is computed only on a tie or a gain.
        share_a = self.pool.shared(new_a) if ga >= 0 else 0
        share_t = self.pool.shared(new_t) if target >= 0 else 0
        if share_a + share_t < old[0][0] + old[1][0]:
            return False
        sa = self.pool.score(new_a, share_a) if ga >= 0 else (0,) * 5
        st = self.pool.score(new_t, share_t) if target >= 0 else (0,) * 5
        if _minus(_plus(sa, st), _plus(*old)) <= (0,) * 5:
            return False
        for gi, members, score in ((ga, new_a, sa), (target, new_t, st)):
            if gi >= 0:
                self.groups[gi], self.scores[gi] = members, score
            else:
                self.unplaced = members
        self.where[a] = target
        if b is not None:
            self.where[b] = ga
        return True

    def run(self, rng: random.Random) -> None:
        n = len(self.pool.people)
        by_interest: dict[str, list[int]] = {}
        for i, keys in enumerate(self.pool.interests):
            for k in keys:
                by_interest.setdefault(k, []).append(i)
        for _ in range(MAX_PASSES):
            improved = False
            for a in range(n):
                if self.evaluations >= MAX_EVALUATIONS:
                    return
                if n <= EXHAUSTIVE:
                    partners: list[int] = list(range(n))
                else:
                    partners = rng.sample(range(n), SAMPLE)
                    for k in self.pool.interests[a][:2]:
                        mates = by_interest[k]
                        partners += rng.sample(mates, min(SAMPLE // 2, len(mates)))
                for b in partners:
                    if b != a and self.where[b] != self.where[a] and self.try_change(a, b, -1):
                        improved = True
                        break
                for gi in sorted({self.where[b] for b in partners} - {-1, self.where[a]}):
                    if self.try_change(a, None, gi):
                        improved = True
                        break
            if not improved:
                return


def form(people: Sequence[Person], lo: int, hi: int, year: int, month: int, seed: int) -> tuple[Pool, list[list[int]], list[int], int]:
    """Groups (lists of indices into `people`), the unplaced, and how many changes were weighed."""
    pool = Pool.of(people, month_starts(year, month))
    rng = random.Random(seed)
    groups, unplaced = seed_groups(pool, plan_sizes(len(people), lo, hi), rng, datetime(year, month, 15, tzinfo=UTC))
    search = Search(pool, groups, unplaced, lo, hi)
    search.run(rng)
    return pool, search.groups, search.unplaced, search.evaluations


def random_split(n: int, sizes: list[int], seed: int) -> list[list[int]]:
    """The baseline the report compares with: the same sizes, people shuffled with `seed`."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    out, at = [], 0
    for size in sizes:
        out.append(order[at:at + size])
        at += size
    return out


def month_dates(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
