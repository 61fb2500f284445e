"""Commands start at once (issue 13, point 2): the region check needs no `holidays` import, the
static region list stays the same as the installed `holidays` package's, a clean template set is
not rendered again until a byte of it changes, and `validate` loads no Google client or PIL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.app.templates import CHECKED_FILE
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


def test_validate_does_not_import_google_or_pil() -> None:
    """`friendtor validate` of the example loads neither googleapiclient nor PIL."""
    code = ("import sys\n"
            "from scheduler.cli.main import main\n"
            "rc = main(['validate', '--config', sys.argv[1]])\n"
            "print(rc, [m for m in ('googleapiclient', 'PIL') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 []"
