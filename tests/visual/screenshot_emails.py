"""Render every kind of HTML email in headless Chromium and save a PNG of each, to look at.

    python tests/visual/screenshot_emails.py [OUT_DIR]     (default: var/email-screenshots)

Needs Debian's chromium (apt-get install chromium). Not part of the test suite: a person
looks at the pictures. The HTML comes from the same preview path members' mail takes, on
the bundled example config.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from integrations.calendars import group_availability  # noqa: E402
from scheduler.app.loader import load_config  # noqa: E402
from scheduler.compose.build import build  # noqa: E402
from scheduler.cli.preview import preview  # noqa: E402
from scheduler.app.templates import load_templates  # noqa: E402
from scheduler.compose.render import KINDS  # noqa: E402
from scheduler.compose.samples import sample_contexts, sample_group  # noqa: E402

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def html_pages() -> dict[str, str]:
    config = load_config(ROOT / "config" / "example")
    group = config.groups["k-club"]
    avail = group_availability(config, group, NOW, datetime(2027, 3, 1, tzinfo=UTC))
    pages = {}
    for kind in KINDS:
        to = {"nudge": "priya.raman@pacific-u.example", "alert": "maya.chen@northeast-childrens.example"}.get(
            kind, "ananya.das@kolkata-ich.example")
        try:
            message = preview(config, group, kind, to, NOW, avail)
        except Exception:  # e.g. no alert is due on the example: render the sample data instead
            sample = sample_group(share=False)
            message = build(kind, config=config, templates=load_templates(None), group=sample,
                            recipient=sample.members[0], context=sample_contexts(sample)[kind],
                            key=f"{kind}:sample", now=NOW)
        pages[kind] = message.get_body(("html",)).get_content()
    sample = sample_group(share=False)
    failure = build("failure", config=config, templates=load_templates(None), group=sample, recipient=sample.members[0],
                    context=sample_contexts(sample)["failure"], key="failure:sample", now=NOW)
    pages["failure"] = failure.get_body(("html",)).get_content()
    return pages


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "email-screenshots"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, html in html_pages().items():
            page = Path(tmp) / f"{kind}.html"
            page.write_text(html, encoding="utf-8")
            png = out / f"{kind}.png"
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", f"--user-data-dir={tmp}/profile", "--hide-scrollbars",
                            "--window-size=700,1400", f"--screenshot={png}", page.as_uri()],
                           check=True, capture_output=True, timeout=60)
            print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
