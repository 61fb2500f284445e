"""Conferences in service.toml and the gathering settings of a group: `validate` accepts them,
and each mistake is one line naming the file, the field and the fix (never a traceback)."""

from __future__ import annotations

import pytest

from builders import CONFERENCE as PAS
from scheduler.app.loader import load_config
from test_validate import GROUP, SERVICE, mutate, problems, validate

SHM = """
[[conferences]]
name = "SHM Converge 2027"
city = "Las Vegas"
timezone = "America/Los_Angeles"
start = 2027-03-22
end = 2027-03-25
"""
ATTENDS = ('holidays = "US-NY"\n', 'holidays = "US-NY"\nconferences = ["PAS 2027"]\n')  # Chandra, members[3]


def test_conferences_and_members_who_attend_them_validate(write_config_folder, capsys):
    """Two conferences; a member naming one in another letter case; gathering settings: all valid."""
    group = mutate(GROUP, *ATTENDS).replace('conferences = ["PAS 2027"]', 'conferences = ["pas 2027"]')
    group = mutate(group, "started = 2026-01-13\n",
                   'started = 2026-01-13\ngathering_min = 2\ngathering_days_before = 45\ngathering_time = "19:00"\n')
    folder = write_config_folder({"g.toml": group}, service=SERVICE + PAS + SHM)
    result = validate(folder, capsys)
    assert (result.code, result.err) == (0, ""), result.err
    config = load_config(folder)
    assert [c.name for c in config.service.conferences] == ["PAS 2027", "SHM Converge 2027"]
    g = config.groups["g"]
    assert (g.gathering_min, g.gathering_days_before, g.gathering_time.isoformat()) == (2, 45, "19:00:00")


SERVICE_CASES = [
    pytest.param(mutate(PAS, "end = 2027-04-27", "end = 2027-04-20"), "conferences[1]: ",
                 ["end (2027-04-20) is before start (2027-04-24)", "swap"], id="end-before-start"),
    pytest.param(mutate(PAS, 'timezone = "America/Toronto"', 'timezone = "America/Toronot"'),
                 "conferences[1].timezone: ", ["America/Toronto"], id="unknown-zone"),
    pytest.param(mutate(PAS, 'timezone = "America/Toronto"', 'timezone = "UTC-5"'),
                 "conferences[1].timezone: ", [], id="offset-not-a-zone"),
    pytest.param(mutate(PAS, "start = 2027-04-24", 'start = "2027-04-24"'),
                 "conferences[1].start: ", ["remove the quotes"], id="quoted-date"),
    pytest.param(mutate(PAS, 'city = "Toronto"\n', ""), "conferences[1].city: ", [], id="no-city"),
    pytest.param(mutate(PAS, 'city = "Toronto"', 'city = "Toronto\\r\\nBcc: x@evil.example"'),
                 "conferences[1].city: ", [], id="city-with-line-break"),
    pytest.param(mutate(PAS, 'name = "PAS 2027"', 'nme = "PAS 2027"'), "conferences[1].nme: ",
                 ["did you mean 'name'"], id="misspelt-key"),
    pytest.param(PAS + PAS.replace('"PAS 2027"', '"pas-2027"'), "conferences: ",
                 ['"PAS 2027" and "pas-2027"'], id="two-with-one-name"),
    pytest.param("conferences = \"PAS 2027\"\n", "conferences: ", [], id="not-a-table"),
]


@pytest.mark.parametrize("conference, where, words", SERVICE_CASES)
def test_one_problem_in_a_conference_is_one_line(write_config_folder, capsys, conference, where, words):
    """A broken [[conferences]] entry: exit 2, one line naming service.toml and the field."""
    service = conference + SERVICE if conference.startswith("conferences =") else SERVICE + conference
    folder = write_config_folder({"g.toml": GROUP}, service=service)
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"service.toml: {where}"), line
    for word in words:
        assert word in line


GROUP_CASES = [
    pytest.param('conferences = ["PAS 2072"]', SERVICE + PAS + SHM, "members[3] (Chandra Rao).conferences[1]: ",
                 ['"PAS 2072" is not a conference in service.toml', "did you mean 'PAS 2027'",
                  "known: PAS 2027, SHM Converge 2027"], id="unknown-conference"),
    pytest.param('conferences = ["PAS 2027"]', SERVICE, "members[3] (Chandra Rao).conferences[1]: ",
                 ["service.toml lists none", "[[conferences]]"], id="no-conferences-at-all"),
    pytest.param('conferences = "PAS 2027"', SERVICE + PAS, "members[3] (Chandra Rao).conferences: ",
                 [], id="not-a-list"),
    pytest.param('conferences = [""]', SERVICE + PAS, "members[3] (Chandra Rao).conferences[1]: ",
                 ["must not be empty"], id="empty-name"),
]


@pytest.mark.parametrize("attends, service, where, words", GROUP_CASES)
def test_a_member_naming_a_conference_that_is_not_listed_is_one_line(
        write_config_folder, capsys, attends, service, where, words):
    """A member's conferences must be in service.toml: one line with a did-you-mean and the known names."""
    group = mutate(GROUP, ATTENDS[0], ATTENDS[0] + attends + "\n")
    folder = write_config_folder({"g.toml": group}, service=service)
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"groups/g.toml: {where}"), line
    for word in words:
        assert word in line


SETTING_CASES = [
    pytest.param("gathering_min = 1", "gathering_min: ", ["from 2 to 100", "got 1"], id="min-below-two"),
    pytest.param("gathering_min = 0", "gathering_min: ", ["from 2 to 100"], id="min-zero"),
    pytest.param('gathering_min = "three"', "gathering_min: ", [], id="min-not-a-number"),
    pytest.param("gathering_days_before = 0", "gathering_days_before: ", [], id="days-before-zero"),
    pytest.param("gathering_days_before = 400", "gathering_days_before: ", [], id="days-before-too-many"),
    pytest.param('gathering_time = "6:30pm"', "gathering_time: ", ['"18:30"'], id="time-am-pm"),
    pytest.param('gathering_time = "25:00"', "gathering_time: ", ['"18:30"'], id="time-past-midnight"),
    pytest.param("gathering_time = 1830", "gathering_time: ", ['"18:30"'], id="time-a-number"),
    pytest.param("gathering_time = 18:30:15", "gathering_time: ", ['"18:30"'], id="time-with-seconds"),
]


@pytest.mark.parametrize("setting, where, words", SETTING_CASES)
def test_a_bad_gathering_setting_is_one_line(write_config_folder, capsys, setting, where, words):
    """gathering_min below 2, a time that is not HH:MM, days out of range: one line each."""
    group = mutate(GROUP, "started = 2026-01-13\n", f"started = 2026-01-13\n{setting}\n")
    folder = write_config_folder({"g.toml": group}, service=SERVICE + PAS)
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"groups/g.toml: {where}"), line
    for word in words:
        assert word in line
