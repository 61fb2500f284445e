"""The gateways' place in the layers: integrations/ imports only scheduler.core (ports,
errors, values, core.log), never the app, the message composer or the CLI; and no module
in integrations/ is over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "integrations").rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_a_gateway_imports_only_the_core_of_scheduler(path):
    """integrations → scheduler.core only: file writes come in through the WriteFile port, the
    event text through SharedEvent, so nothing here reaches up into app, compose or cli."""
    outside = sorted(m for m in _imports(path) if m.startswith("scheduler") and not m.startswith("scheduler.core"))
    assert not outside, f"{path.relative_to(ROOT)} imports {outside}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_no_gateway_module_is_over_400_lines(path):
    """Small modules with one job each."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
