"""Forming groups (`core/matching`, `core/matchgroups`): every person placed once, the objective's
order (shared interest, then meeting, then institutions, then stage), rosters in one institution,
in one zone, in antipodal zones and across DST changes, and the same groups for the same seed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.core.matching import _at_least, _planes, best_count, month_starts, plan_sizes, Pool
from scheduler.core.matchgroups import match
from scheduler.core.roster import Roster, interest_key


def roster(*people: dict) -> Roster:
    """A roster from partial entries: each gets a name, an email and defaults for the rest."""
    full = []
    for i, p in enumerate(people, 1):
        full.append({"name": f"Person {i:04d}", "email": f"p{i:04d}@uni-{i}.example",
                     "institution": f"University {i}", "timezone": "America/New_York",
                     "hours": "09:00-17:00", **p})
    return Roster.model_validate({"people": full})


def placed(outcome) -> list[str]:
    return [m.email for f in outcome.formed for m in f.group.members] + [u.email for u in outcome.unplaced]


# --- interests ------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("Grant writing", "grant-writing"),
    ("Grant writing", "  GRANT   writing "),
    ("grants writing", "Grant_writing"),
    ("Case studies", "case study"),
    ("Work–life integration", "work life integration"),
    ("QI projects", "qi project"),
])
def test_interest_spellings_are_one_interest(a: str, b: str) -> None:
    """Case, spacing, hyphens, underscores, dashes and simple plurals do not split an interest."""
    assert interest_key(a) == interest_key(b)


@pytest.mark.parametrize("a, b", [("analysis", "analyses"), ("grant writing", "grant reviewing"),
                                  ("class", "clas")])
def test_different_interests_stay_apart(a: str, b: str) -> None:
    """The plural rule is simple: words ending in ss/us/is keep their s, and synonyms are not guessed."""
    assert interest_key(a) != interest_key(b)


# --- the counter behind the search -------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=(1 << 40) - 1), min_size=0, max_size=14),
       st.integers(min_value=0, max_value=16))
def test_bit_sliced_count_matches_counting_each_start(bitmaps: list[int], k: int) -> None:
    """`_at_least` marks exactly the starts where at least k bitmaps are set."""
    full = (1 << 40) - 1
    expected = sum(1 << i for i in range(40) if sum((b >> i) & 1 for b in bitmaps) >= k)
    assert _at_least(_planes(bitmaps), k, full) == expected


@pytest.mark.parametrize("n, lo, hi, sizes", [
    (30, 5, 8, [6, 6, 6, 6, 6]), (12, 4, 6, [6, 6]), (7, 4, 5, [5]), (9, 3, 3, [3, 3, 3]),
    (3, 4, 6, []), (11, 5, 5, [5, 5]), (13, 2, 9, [7, 6]),
])
def test_group_sizes(n: int, lo: int, hi: int, sizes: list[int]) -> None:
    """Sizes are as even as possible near the middle of MIN-MAX; what cannot be split is left over."""
    assert plan_sizes(n, lo, hi) == sizes


# --- every person once --------------------------------------------------------------------

@pytest.mark.parametrize("n, lo, hi", [(5, 5, 5), (12, 4, 6), (7, 4, 5), (40, 5, 8), (23, 3, 4), (170, 5, 7)])
def test_every_person_is_placed_once_or_unplaced_with_a_reason(n: int, lo: int, hi: int) -> None:
    """Each person is in exactly one group or unplaced (with a reason), and group sizes keep to MIN-MAX."""
    zones = ["America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney", "America/Los_Angeles"]
    topics = ["grant writing", "teaching", "quality improvement", "leadership"]
    r = roster(*({"timezone": zones[i % 5], "interests": [topics[i % 4], topics[(i * 7) % 4]],
                  "institution": f"U{i % 6}", "stage": ["junior", "mid-career"][i % 2]} for i in range(n)))
    out = match(r, lo, hi, 2027, 3, seed=3)
    assert sorted(placed(out)) == sorted(p.email for p in r.people)
    assert all(lo <= len(f.group.members) <= hi for f in out.formed)
    assert all(u.reason for u in out.unplaced)
    assert len(out.unplaced) == n - sum(plan_sizes(n, lo, hi))


def test_leftovers_are_unplaced_with_the_reason() -> None:
    """Seven people in groups of 4-5: one group of five, and two named as left over, saying why."""
    out = match(roster(*({} for _ in range(7))), 4, 5, 2027, 3, seed=1)
    assert [len(f.group.members) for f in out.formed] == [5]
    assert len(out.unplaced) == 2
    assert "7 people cannot all be placed in groups of 4-5" in out.unplaced[0].reason


def test_same_seed_same_groups_and_files() -> None:
    """The same roster, sizes, month and seed give the same groups, names and coordinators."""
    zones = ["America/Chicago", "Europe/Berlin", "Asia/Tokyo", "America/Sao_Paulo"]
    r = roster(*({"timezone": zones[i % 4], "institution": f"U{i % 9}",
                  "interests": [["research", "teaching", "leadership"][i % 3]]} for i in range(60)))
    runs = [match(r, 5, 7, 2027, 5, seed=11) for _ in range(2)]
    assert runs[0] == runs[1]


# --- the objective's order -------------------------------------------------------------

def test_a_shared_interest_comes_first() -> None:
    """Two interests of five people each make two groups, one per interest, each mission naming it."""
    r = roster(*({"interests": ["Grant writing" if i % 2 else "teaching"]} for i in range(10)))
    out = match(r, 5, 5, 2027, 3, seed=2)
    assert sorted(f.interest for f in out.formed) == ["Grant writing", "teaching"]
    for f in out.formed:
        assert f.metrics.interest_fit == 1.0
        assert interest_key(f.interest) in interest_key(f.group.mission)


def test_institutions_are_spread_where_the_roster_allows() -> None:
    """Ten people from five institutions, two each, in groups of five: no group has two from one."""
    r = roster(*({"institution": f"Hospital {i % 5}"} for i in range(10)))
    out = match(r, 5, 5, 2027, 3, seed=5)
    assert [f.metrics.institutions for f in out.formed] == [5, 5]


def test_every_member_in_one_institution_still_forms_groups() -> None:
    """When everyone is at one institution, diversity cannot be had; groups are formed all the same."""
    r = roster(*({"institution": "Only Hospital", "interests": ["research"]} for _ in range(12)))
    out = match(r, 4, 6, 2027, 3, seed=1)
    assert sorted(placed(out)) == sorted(p.email for p in r.people)
    assert all(f.metrics.institutions == 1 and f.best_start is not None for f in out.formed)


def test_similar_career_stage_breaks_ties() -> None:
    """With interest, hours and institutions equal, groups gather people of one career stage."""
    r = roster(*({"stage": ["Junior faculty", "Mid-career"][i % 2]} for i in range(8)))
    out = match(r, 4, 4, 2027, 3, seed=4)
    stages = [{r.people[int(m.email[1:5]) - 1].stage for m in f.group.members} for f in out.formed]
    assert sorted(len(s) for s in stages) == [1, 1]


def test_every_member_in_one_zone_can_all_meet() -> None:
    """In one zone with the same hours, every group's best time has everyone free, and the slot finder agrees."""
    r = roster(*({"timezone": "Asia/Kolkata", "hours": "10:00-16:00",
                  "interests": [["a", "b", "c"][i % 3]]} for i in range(15)))
    out = match(r, 5, 5, 2027, 3, seed=1)
    for f in out.formed:
        assert f.metrics.best == 5 and f.best_start is not None and not f.cannot_come
        assert f.group.timezone == "Asia/Kolkata"


def test_antipodal_zones_are_not_mixed_when_interests_do_not_decide() -> None:
    """Auckland and London working hours never overlap: with the same interest everywhere, each group
    is in one of the two, and everyone can come to its best time."""
    r = roster(*({"timezone": ["Pacific/Auckland", "Europe/London"][i % 2], "interests": ["research"]}
                 for i in range(12)))
    out = match(r, 6, 6, 2027, 3, seed=9)
    for f in out.formed:
        assert len({m.timezone for m in f.group.members}) == 1
        assert f.metrics.best == 6 and not f.cannot_come


def test_an_antipodal_group_forced_by_interest_says_who_cannot_come() -> None:
    """Interest comes first: a group that must mix Auckland and London still reaches quorum (3 of 6),
    and the report names the members who cannot come to its best time, and why."""
    r = roster(*({"timezone": ["Pacific/Auckland", "Europe/London"][i % 2], "interests": ["research"]}
                 for i in range(6)))
    [f] = match(r, 6, 6, 2027, 3, seed=1).formed
    assert f.best_start is not None and f.metrics.best == 3
    assert len(f.cannot_come) == 3 and all("outside 09:00–17:00 local" in why for _, why in f.cannot_come)


# --- time zones and DST ------------------------------------------------------------------

def test_overlap_follows_each_date_across_the_us_and_uk_clock_changes() -> None:
    """New York 09:00-10:00 and London 14:00-15:00 meet at 14:00 UTC before 14 March 2027 and at
    13:00 UTC after 28 March, and never between (the US has moved its clocks, the UK not yet)."""
    r = roster({"hours": "09:00-10:00"}, {"timezone": "Europe/London", "hours": "14:00-15:00"})
    starts = month_starts(2027, 3)
    pool = Pool.of(r.people, starts)
    best, where = best_count(pool.bits, pool.full)
    assert best == 2
    both = [datetime.fromtimestamp(starts[i], UTC) for i in range(len(starts)) if where >> i & 1]
    assert {d.day for d in both} == {1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 29, 30, 31}
    assert {d.hour for d in both if d.day < 14} == {14} and {d.hour for d in both if d.day > 28} == {13}


def test_the_slot_finder_check_agrees_across_dst() -> None:
    """A group of two in New York and two in London at those hours: the slot finder's best time in
    March 2027 has all four, and falls outside the two weeks when the clocks disagree."""
    r = roster({"hours": "09:00-10:00"}, {"hours": "09:00-10:00"},
               {"timezone": "Europe/London", "hours": "14:00-15:00"},
               {"timezone": "Europe/London", "hours": "14:00-15:00"})
    [f] = match(r, 4, 4, 2027, 3, seed=1).formed
    assert f.metrics.best == 4 and not f.cannot_come
    assert not 14 <= f.best_start.day <= 28


def test_southern_hemisphere_and_half_hour_zones() -> None:
    """Adelaide 16:00-17:00 is 05:30 UTC until its clocks go back on 4 April 2027 (+10:30 to +9:30),
    06:30 after; Kolkata 11:00-12:00 is always 05:30 UTC. They can meet on 1 and 2 April only,
    and the slot finder's best time for the pair is on one of those days."""
    r = roster({"timezone": "Australia/Adelaide", "hours": "16:00-17:00"},
               {"timezone": "Asia/Kolkata", "hours": "11:00-12:00"})
    starts = month_starts(2027, 4)
    pool = Pool.of(r.people, starts)
    best, where = best_count(pool.bits, pool.full)
    assert best == 2
    assert {datetime.fromtimestamp(starts[i], UTC).day for i in range(len(starts)) if where >> i & 1} == {1, 2}
    [f] = match(r, 2, 2, 2027, 4, seed=1).formed
    assert f.metrics.best == 2 and not f.cannot_come
    assert f.best_start == datetime(2027, 4, 1, 5, 30, tzinfo=UTC)


def test_the_report_compares_with_a_random_split() -> None:
    """The random split has the same sizes, and the formed groups do at least as well on interest fit."""
    topics = ["grant writing", "teaching", "leadership"]
    r = roster(*({"interests": [topics[i % 3]], "institution": f"U{i % 4}"} for i in range(30)))
    out = match(r, 5, 5, 2027, 3, seed=1)
    assert Counter(m.size for m in out.baseline) == Counter(f.metrics.size for f in out.formed)
    assert out.summary("formed")["interest_fit"] == 1.0
    assert out.summary("formed")["interest_fit"] >= out.summary("random")["interest_fit"]


ZONES = ["Pacific/Auckland", "Europe/London", "America/St_Johns", "Asia/Kathmandu", "America/Phoenix",
         "Australia/Lord_Howe"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ZONES), st.integers(0, 3), st.integers(0, 4), st.integers(6, 12)),
                min_size=2, max_size=40),
       st.integers(2, 6), st.integers(0, 3), st.integers(0, 2**32))
def test_any_roster_places_everyone_once(rows, lo: int, extra: int, seed: int) -> None:
    """Whatever the roster: each person once (in a group of MIN-MAX or unplaced with a reason),
    and the same seed gives the same outcome."""
    hi = lo + extra
    r = roster(*({"timezone": zone, "institution": f"U{inst}", "interests": [f"topic {topic}"],
                  "hours": f"{start:02d}:00-{start + 8:02d}:00"} for zone, inst, topic, start in rows))
    if len(rows) < lo:
        return
    out = match(r, lo, hi, 2027, 10, seed)
    assert sorted(placed(out)) == sorted(p.email for p in r.people)
    assert all(lo <= len(f.group.members) <= hi for f in out.formed)
    assert all(u.reason for u in out.unplaced)
    assert match(r, lo, hi, 2027, 10, seed) == out
