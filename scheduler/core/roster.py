"""A roster of people who want a peer group, as frozen values (`friendtor match`). Pure.

A roster file holds `[[people]]` entries: `name`, `email`, `institution`, `timezone`,
`hours`, and optionally `stage` (career stage) and `interests` (phrases). Reading the file
and turning validation errors into one-line messages is `app/rosterfile.py`'s job; this
module says what a valid roster is, and how interests and stages are compared.

Interests are phrases people type, so they are compared by a key, not as written:
Unicode-normalised (NFKC), case-folded, split into words at anything that is not a letter
or digit (spaces, hyphens, underscores, slashes), and each word made singular by a simple
English rule ("-ies" to "-y", a final "s" dropped unless the word ends in "ss", "us" or
"is"). So "Grant writing", "grant-writing" and "Grants  Writing" are one interest. The rule
is deliberately simple: "analyses" and "analysis" stay different, as do synonyms.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from scheduler.core.config import Frozen, Member
from scheduler.core.fields import Email, HoursSpec, SingleLine, TimeZoneName, _email, fail, show

# Bounds on what one roster may hold: a society's whole membership fits, a runaway file does not.
MAX_PEOPLE = 10_000
MAX_INTERESTS = 20       # per person
MAX_PHRASE = 100         # characters in one interest or stage


def interest_key(phrase: str) -> str:
    """The key two spellings of one interest share (see the module docstring)."""
    text = unicodedata.normalize("NFKC", phrase).casefold()
    return " ".join(_singular(w) for w in re.findall(r"[^\W_]+", text))


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def stage_key(stage: str | None) -> str | None:
    """Career stages compare case- and spacing-insensitively ("Mid-career" = "mid career")."""
    return interest_key(stage) or None if stage else None


def _phrase(value: str) -> str:
    if len(value) > MAX_PHRASE:
        raise fail(f"is {len(value)} characters long; keep it under {MAX_PHRASE}, e.g. \"grant writing\"")
    if not interest_key(value):
        raise fail(f"{show(value)} has no letters or digits; write a phrase such as \"grant writing\"")
    return value


Phrase = Annotated[SingleLine, AfterValidator(_phrase)]


def _few(value: Any) -> Any:
    # Counted before the entries are read, and said in a coordinator's words (not "tuple").
    if isinstance(value, list | tuple) and len(value) > MAX_INTERESTS:
        raise fail(f"{len(value)} interests; list at most {MAX_INTERESTS}, the ones that matter most")
    return value


class Person(Frozen):
    """One person on the roster; `hours` are local wall-clock hours on weekdays, as for members."""

    name: SingleLine
    email: Email
    institution: SingleLine
    timezone: TimeZoneName
    hours: HoursSpec
    stage: Phrase | None = None
    interests: Annotated[tuple[Phrase, ...], BeforeValidator(_few)] = ()

    @property
    def interest_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(interest_key(i) for i in self.interests))

    @property
    def institution_key(self) -> str:
        return " ".join(self.institution.casefold().split())

    def as_member(self) -> Member:
        """The member this person becomes in a group file (the slot finder reads members)."""
        return Member(name=self.name, email=self.email, institution=self.institution,
                      timezone=self.timezone, hours=self.hours)


class Roster(Frozen):
    people: tuple[Person, ...] = Field(min_length=1, max_length=MAX_PEOPLE)

    def labels(self) -> dict[str, str]:
        """Each interest key's label: the spelling most people used (ties: the first in sort order)."""
        spellings: dict[str, Counter[str]] = {}
        for p in self.people:
            for phrase in p.interests:
                spellings.setdefault(interest_key(phrase), Counter())[" ".join(phrase.split())] += 1
        return {k: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for k, c in spellings.items()}


def duplicate_emails(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for every person whose email an earlier entry already uses, read from
    the file's data, so these are reported beside field problems (like `crossref`)."""
    people = data.get("people")
    seen: dict[str, int] = {}
    problems = []
    for i, p in enumerate(people if isinstance(people, list) else [], 1):
        try:
            email = _email(p.get("email")) if isinstance(p, Mapping) else None
        except ValueError:  # PydanticCustomError: the field's own problem says what is wrong
            continue
        if email is None:
            continue
        if email in seen:
            problems.append((f"people[{i}].email", f"{email} is already used by people[{seen[email]}]; "
                             "each person is listed once, so remove or merge one of the entries"))
        seen.setdefault(email, i)
    return problems
