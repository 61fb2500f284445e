"""The folders are the layers, and the code keeps to them (DESIGN.md, "Data and files"):
dependencies point down only, cli → app → compose → core, and integrations → core; nothing
in core/ or compose/ touches a file, a socket, the environment or the clock; no module in
scheduler/ or integrations/ is over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted([*(ROOT / "scheduler").rglob("*.py"), *(ROOT / "integrations").rglob("*.py")])
IDS = [str(p.relative_to(ROOT)) for p in MODULES]

# What each layer may import from the project (a layer may always import itself).
ALLOWED = {
    "scheduler.core": ("scheduler.core",),
    "scheduler.compose": ("scheduler.core", "scheduler.compose"),
    "scheduler.app": ("scheduler.core", "scheduler.compose", "scheduler.app"),
    "scheduler.cli": ("scheduler", "integrations"),
    "integrations": ("scheduler.core", "integrations"),
}
# Names through which pure code would reach the world.
WORLDLY_MODULES = {"socket", "ssl", "subprocess", "smtplib", "urllib.request", "http.client", "mailbox",
                   "fcntl", "shutil", "tempfile", "sqlite3", "tinydb", "signal", "time"}
WORLDLY_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob",
                 "mkdir", "unlink", "now", "today", "utcnow", "getenv", "urlopen"}


def layer(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2]) if parts[0] == "scheduler" and len(parts) > 2 else parts[0]


def imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved (inside functions too)."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.update([name] if node.module else [f"{name}.{a.name}" for a in node.names])
    return found


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_dependencies_point_down(path: Path) -> None:
    """A module imports from its own layer and the layers below it only."""
    own = layer(path)
    if own not in ALLOWED:
        return  # scheduler/__init__.py
    project = [m for m in imports(path) if m.split(".")[0] in ("scheduler", "integrations")]
    wrong = sorted(m for m in project if not m.startswith(ALLOWED[own]) and m != "scheduler")
    assert not wrong, f"{path.relative_to(ROOT)} ({own}) imports {wrong}"


PURE = [p for p in MODULES if layer(p) in ("scheduler.core", "scheduler.compose")]


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(ROOT)) for p in PURE])
def test_pure_layers_touch_no_file_socket_environment_or_clock(path: Path) -> None:
    """core/ and compose/ take values and return values: the edges read and write."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    worldly = sorted(m for m in imports(path) if m in WORLDLY_MODULES or m.split(".")[0] == "os")
    calls = sorted({node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                    for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and ((isinstance(node.func, ast.Attribute) and node.func.attr in WORLDLY_CALLS)
                         or (isinstance(node.func, ast.Name) and node.func.id in WORLDLY_CALLS))})
    assert not worldly and not calls, f"{path.relative_to(ROOT)}: imports {worldly}, calls {calls}"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_no_module_is_over_400_lines(path: Path) -> None:
    """Small modules with one job each."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
