"""Commands start at once (issue 13, point 2): the region check needs no `holidays` import, the
static region list stays the same as the installed `holidays` package's, a time zone is
accepted without listing every zone on the system, and a clean template set is not rendered
again until a byte of it changes, from the first `validate` on (it creates the state folder).
What each command imports: test_startup_imports.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.app.templates import CHECKED_FILE, keep_clean_check
from scheduler.core.config import Limits
from scheduler.core.errors import ConfigError
from scheduler.core.fields import _zone_name
from scheduler.core.regions import HOLIDAYS_VERSION, holiday_regions

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_static_holiday_regions_match_the_installed_package() -> None:
    """The shipped region list is exactly `holidays.list_supported_countries()`."""
    import holidays

    installed = {c: tuple(s) for c, s in holidays.list_supported_countries().items()}
    assert holiday_regions() == installed, (
        f"scheduler/core/regions.py was taken from holidays {HOLIDAYS_VERSION}, installed is "
        f"{holidays.__version__}: regenerate _DATA as "
        "';'.join(f\"{c}:{','.join(d[c])}\" if d[c] else c for c in sorted(d))")


def test_checking_a_holiday_region_does_not_import_holidays() -> None:
    """Validating `holidays = "CA-NL"` (and rejecting a bad one) leaves `holidays` unimported."""
    code = (
        "import sys\n"
        "from pydantic import TypeAdapter, ValidationError\n"
        "from scheduler.core.fields import HolidayRegion\n"
        "ta = TypeAdapter(HolidayRegion)\n"
        "assert ta.validate_python('ca-nl') == 'CA-NL'\n"
        "try:\n"
        "    ta.validate_python('CA-ZZ')\n"
        "except ValidationError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('CA-ZZ accepted')\n"
        "print('holidays' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- the template check is kept by content hash in the state folder ---------------------

EXAMPLE = REPO_ROOT / "config" / "example"
GOOD_INVITE = "Hello {{ recipient.first_name }},\n\nSee you there.\n"
BROKEN_INVITE = "Hello {{ recipient.first_name }},\n\n{{ recipient.nmae }}\n"

# Loads the config in a fresh process (no in-process cache) and says whether the templates
# were rendered (checked), then the problems, one a line.
LOAD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from scheduler.app.loader import load_config\n"
    "from scheduler.core.errors import ConfigError\n"
    "import scheduler.app.templates as t\n"
    "checks, check = [], t._check\n"
    "t._check = lambda *a: (checks.append(a), check(*a))[1]\n"
    "try:\n"
    "    load_config(Path(sys.argv[1]))\n"
    "    problems = []\n"
    "except ConfigError as exc:\n"
    "    problems = [str(p) for p in exc.problems]\n"
    "print(bool(checks))\n"
    "print(*problems, sep='\\n')\n")


def load(folder: Path) -> tuple[bool, str]:
    out = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    rendered, _, problems = out.stdout.partition("\n")
    return rendered == "True", problems.strip()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of config/example with a state folder and one template override."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("var"))
    (target / "var").mkdir()
    (target / "templates").mkdir()
    (target / "templates" / "invite.txt").write_text(GOOD_INVITE, "utf-8")
    return target


def test_a_clean_template_set_is_not_rendered_again(folder: Path) -> None:
    """The second load of unchanged templates skips the sample render."""
    assert load(folder) == (True, "")
    assert (folder / "var" / CHECKED_FILE).is_file()
    assert load(folder) == (False, "")


def test_a_template_edit_invalidates_the_kept_check(folder: Path) -> None:
    """After a clean check, breaking a template is still reported, every time."""
    assert load(folder) == (True, "")
    (folder / "templates" / "invite.txt").write_text(BROKEN_INVITE, "utf-8")
    for _ in range(2):
        rendered, problems = load(folder)
        assert rendered and "templates/invite.txt" in problems and "'nmae'" in problems


@pytest.mark.parametrize("garbage", [b"", b"\xff\x00not json", b"[1, 2]", b'{"clean": "0000"}',
                                     b"x" * 100_000])
def test_a_garbage_cache_file_is_ignored_and_rewritten(folder: Path, garbage: bytes) -> None:
    """A corrupt, foreign or oversized cache file means: check the templates, then rewrite it."""
    (folder / "var" / CHECKED_FILE).write_bytes(garbage)
    assert load(folder) == (True, "")
    assert json.loads((folder / "var" / CHECKED_FILE).read_bytes())["clean"]
    assert load(folder) == (False, "")


# --- time zones: a quick yes, the same answers ----------------------------------------------

ODD_ZONES = ["posixrules", "posix/Europe/London", "right/UTC", "Europe", "Europe/London/", "./Europe/London",
             "../zoneinfo/UTC", "/usr/share/zoneinfo/UTC", "zone.tab", "tzdata.zi", "+VERSION", "utc",
             "europe/london", "Asia/Kolkata ", "", "Europe/London\x00", "a" * 300, "UTC", "Etc/GMT+5",
             "America/St_Johns", "Australia/Adelaide", "localtime", "Factory", "EST5EDT"]


def test_every_zone_on_the_system_is_accepted() -> None:
    """Each name `zoneinfo.available_timezones()` lists is a valid zone."""
    import zoneinfo

    for name in sorted(zoneinfo.available_timezones()):
        assert _zone_name(name) == name


@pytest.mark.parametrize("name", ODD_ZONES, ids=range(len(ODD_ZONES)))
def test_a_zone_is_accepted_exactly_when_the_system_lists_it(name: str) -> None:
    """Loading the one zone (the quick path) accepts no name that `available_timezones()`
    leaves out: special files, folders, the posix/ and right/ copies, other spellings."""
    import zoneinfo

    try:
        accepted = _zone_name(name) == name
    except Exception:  # pydantic's error for a refused value
        accepted = False
    assert accepted == (name in zoneinfo.available_timezones())


# --- the check kept from the first validate on ------------------------------------------------

def run_validate(folder: Path) -> subprocess.CompletedProcess:
    code = "import sys\nfrom scheduler.cli.main import main\nsys.exit(main(['validate', '--config', sys.argv[1]]))\n"
    return subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A copy of config/example as unpacked: no state folder (var/) yet."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("var"))
    return target


def test_the_first_validate_keeps_the_check(fresh: Path) -> None:
    """`validate` before any `run` creates the state folder (0700, as `run` would) with the
    kept check in it: the next command does not render the templates again."""
    out = run_validate(fresh)
    assert out.returncode == 0, out.stderr
    assert (fresh / "var").stat().st_mode & 0o777 == 0o700
    assert (fresh / "var" / CHECKED_FILE).stat().st_mode & 0o777 == 0o600
    assert load(fresh) == (False, "")


def test_other_commands_create_no_state_folder(fresh: Path) -> None:
    """Loading the config (slots, preview, status...) checks the templates but creates nothing."""
    assert load(fresh) == (True, "")
    assert load(fresh) == (True, "")
    assert not (fresh / "var").exists()


def test_a_broken_template_is_never_kept_by_validate(fresh: Path) -> None:
    """A validate that reports a template problem creates no state folder and keeps nothing."""
    (fresh / "templates").mkdir()
    (fresh / "templates" / "invite.txt").write_text(BROKEN_INVITE, "utf-8")
    out = run_validate(fresh)
    assert out.returncode == 2 and "'nmae'" in out.stderr
    assert not (fresh / "var").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to hand a folder to another user")
def test_validate_creates_no_state_folder_under_another_users_folder(fresh: Path) -> None:
    """Run by root (an operator) on a folder that belongs to another user (the service's),
    validate makes no root-owned state folder there that the service could not write into."""
    for path in [fresh, *fresh.rglob("*")]:
        os.chown(path, 65534, 65534)
    out = run_validate(fresh)
    assert out.returncode == 0, out.stderr
    assert not (fresh / "var").exists()


@pytest.mark.parametrize("where", ["a file in the way", "a name too long", "a NUL in the name"])
def test_a_state_folder_that_cannot_be_made_costs_only_the_kept_check(fresh: Path, where: str) -> None:
    """Keeping the check never fails the command: without a usable folder nothing is kept."""
    (fresh / "blocker").write_text("not a folder")
    state_folder = {"a file in the way": fresh / "blocker" / "var", "a name too long": fresh / ("x" * 300),
                    "a NUL in the name": fresh / "v\0ar"}[where]
    keep_clean_check(fresh, Limits(), state_folder)
    assert sorted(p.name for p in fresh.iterdir()) == sorted(["blocker", *(p.name for p in EXAMPLE.iterdir()
                                                                        if p.name != "var")])


@pytest.mark.parametrize("state", ["x" * 300 + "/state.json", "groups/k-club.toml/state.json"],
                         ids=["name too long", "a file as the folder"])
def test_an_unusable_state_path_is_one_line_not_a_crash(fresh: Path, state: str) -> None:
    """Where the kept check would go is the state's folder: when it cannot be used, validate says
    so in the state's one line (exit 2), and never fails while keeping the check."""
    service = fresh / "service.toml"
    service.write_text(service.read_text("utf-8").replace('state = "var/state.json"', f'state = "{state}"'), "utf-8")
    out = run_validate(fresh)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.splitlines()) == 1 and "the state cannot be saved" in out.stderr


def test_validate_makes_no_folder_for_a_state_in_a_database(fresh: Path) -> None:
    """A `state` that is a URL (PostgreSQL) names no folder: validate creates none for it."""
    service = fresh / "service.toml"
    service.write_text(service.read_text("utf-8").replace('state = "var/state.json"',
                                                          'state = "postgresql://db.example/friendtor"'), "utf-8")
    before = sorted(p.relative_to(fresh) for p in fresh.rglob("*"))
    run_validate(fresh)
    assert sorted(p.relative_to(fresh) for p in fresh.rglob("*")) == before
