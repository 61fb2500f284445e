"""Commands start at once (issue 13, point 2): the region check needs no `holidays` import, and
the static region list stays the same as the installed `holidays` package's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
