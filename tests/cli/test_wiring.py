"""The CLI's shape: `wiring` is its one module that imports `integrations`, and the entry
points (`friendtor`, `python -m scheduler.cli`) still reach `main`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scheduler.cli
from scheduler.cli import wiring
from scheduler.core.ports import ReplyInbox, Transport

CLI = Path(scheduler.cli.__file__).parent
ROOT = CLI.parents[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_only_wiring_imports_integrations():
    """No CLI module but wiring.py imports integrations, at the top or inside a function."""
    offenders = {p.name for p in CLI.glob("*.py") if p.name != "wiring.py"
                 if any(m == "integrations" or m.startswith("integrations.") for m in imported_modules(p))}
    assert offenders == set()


def test_no_cli_module_over_400_lines():
    """Every module of the CLI stays small enough to read in one sitting."""
    assert {p.name: n for p in CLI.glob("*.py") if (n := len(p.read_text().splitlines())) > 400} == {}


def test_dry_run_transport_sends_nothing():
    """A dry run's transport factory ignores the config and keeps messages instead of sending them."""
    transport = wiring.transport_factory(dry_run=True)(None)
    assert isinstance(transport, Transport) and transport.messages == []


def test_maildir_transport_writes_nothing_until_it_sends(tmp_path):
    """The simulation's Maildir transport is a Transport and creates its folder only on the first delivery."""
    transport = wiring.maildir_transport(tmp_path / "outbox")
    assert isinstance(transport, Transport) and not (tmp_path / "outbox").exists()


def test_reply_inbox_is_a_reply_inbox():
    """The inbox handed to the service has the ReplyInbox methods."""
    inbox: ReplyInbox = wiring.reply_inbox()
    assert callable(inbox.unread) and callable(inbox.mark_seen)


def test_python_dash_m_reaches_main():
    """`python -m scheduler.cli --help` prints the commands and exits 0."""
    out = subprocess.run([sys.executable, "-m", "scheduler.cli", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "validate" in out and "google-auth" in out
