"""Reading the email templates from disk: the bundled defaults and a config folder's
`templates/` overrides, handed to the pure renderer (`scheduler.compose.render`) as bytes.

Read once per `Templates`: the service builds a new one when the config folder changes (a
template is part of the config), so what is rendered is what `validate` checked.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from scheduler.compose.render import TemplateSources, Templates
from scheduler.core.errors import Problem, TemplateProblem


def default_templates() -> Path:
    """The bundled templates: inside the package when installed, else the repo's templates/."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


def _read_folder(folder: Path) -> dict[str, bytes]:
    # Every file below the folder, as a Jinja file loader would find it: "sub/x.html" too.
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            try:
                files[name] = path.read_bytes()
            except OSError as exc:
                # Said as a render error of that file was said when templates were read lazily.
                raise TemplateProblem(f"templates/{name}", None, f"{type(exc).__name__}: {exc}") from None
    return files


def load_templates(override: Path | None) -> Templates:
    """The templates with a config folder's `templates/` (if it exists) over the bundled ones."""
    folder = override if override is not None and override.is_dir() else None
    sources = TemplateSources(
        override=_read_folder(folder) if folder else {},
        bundled=_bundled(_fingerprint(default_templates())),
        override_files=frozenset(p.name for p in folder.iterdir() if p.is_file()) if folder else frozenset(),
    )
    return Templates(sources)


@lru_cache(maxsize=4)
def _bundled(_state: tuple) -> dict[str, bytes]:
    # The bundled files do not change while friendtor runs, except in a developer's checkout:
    # read again when their names, sizes or times change.
    return _read_folder(default_templates())


def _fingerprint(folder: Path) -> tuple:
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def check_templates(folder: Path) -> list[Problem]:
    """Render every kind with sample data (emails shared and not); one Problem per broken
    template in the config folder's `templates/` (or in the bundled ones)."""
    override = folder / "templates"
    # Rendering 18 emails costs a tenth of a second; the service reloads config often, so the
    # answer is kept until a template file changes.
    override = override if override.is_dir() else None
    state = _fingerprint(override) if override else ()
    return list(_check(override, state, _fingerprint(default_templates())))


@lru_cache(maxsize=32)
def _check(override: Path | None, _override_state: tuple, _bundled_state: tuple) -> tuple[Problem, ...]:
    # The sample data builds every kind of message: imported here, so that loading a config
    # does not load the whole message pipeline until templates are checked.
    from scheduler.compose.samples import template_problems

    try:
        templates = load_templates(override)
    except TemplateProblem as exc:
        return (exc.problem(),)
    return tuple(template_problems(templates))
