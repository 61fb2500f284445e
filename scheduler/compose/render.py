"""Email text from Jinja templates that coordinators may override.

Each kind of email has three templates: `<kind>.subject.txt`, `<kind>.txt` and
`<kind>.html`. A file of the same name in the config folder's `templates/` replaces the
default. Templates run in a sandbox (a template cannot reach Python internals), with
strict undefined variables (a typo is an error, never a blank in a member's inbox), and
HTML escaping on for `.html` templates only: subjects and plain text are never escaped.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateSyntaxError
from jinja2 import select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from scheduler.core.errors import TemplateProblem

KINDS = ("invite", "update", "cancel", "agenda", "follow-up", "nudge", "review", "year-end", "alert", "report")
# Template sets: every kind, plus the report to coordinators that a message could not be delivered.
TEMPLATE_SETS = (*KINDS, "failure")
PARTS = ("subject.txt", "txt", "html")


def default_templates() -> Path:
    """The bundled templates: inside the package when installed, else the repo's templates/."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self, override: Path | None = None):
        self.override = override if override is not None and override.is_dir() else None
        loaders = [FileSystemLoader(str(self.override))] if self.override else []
        loaders.append(FileSystemLoader(str(default_templates())))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def source_of(self, name: str) -> str:
        """How a problem names a template: `templates/x.html` (override) or the bundled path."""
        if self.override and (self.override / name).is_file():
            return f"templates/{name}"
        return f"(bundled) templates/{name}"

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(self.source_of(exc.name or name), exc.lineno, f"syntax error: {exc.message}") from None
        except Exception as exc:  # TemplateError, or anything a template expression raised
            file, line = self._locate(exc, name)
            raise TemplateProblem(file, line, _describe(exc)) from None

    def _locate(self, exc: Exception, name: str) -> tuple[str, int | None]:
        # Jinja rewrites tracebacks so that frames point at template files and lines.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename and frame.filename.endswith((".html", ".txt")):
                return self.source_of(Path(frame.filename).name), frame.lineno
        return self.source_of(name), None

    def render(self, kind: str, context: dict[str, Any]) -> Rendered:
        subject = self._render(f"{kind}.subject.txt", context)
        # A subject is one header line whatever the template does: no CR/LF can reach the header.
        subject = re.sub(r"\s+", " ", subject).strip()
        return Rendered(subject, self._render(f"{kind}.txt", context), self._render(f"{kind}.html", context))

    def unknown_overrides(self) -> list[str]:
        """Files in the override folder that no email uses (a misspelt name would be silently ignored)."""
        if not self.override:
            return []
        known = {f"{k}.{p}" for k in TEMPLATE_SETS for p in PARTS} | {p.name for p in default_templates().iterdir()}
        return sorted(p.name for p in self.override.iterdir() if p.is_file() and p.name not in known)


def _describe(exc: Exception) -> str:
    text = str(exc)
    if type(exc).__name__ == "UndefinedError":
        return f"{text}; check the spelling against docs/templates.md"
    if type(exc).__name__ == "SecurityError":
        return f"not allowed in templates: {text}"
    if type(exc).__name__ in ("TemplateNotFound", "TemplatesNotFound"):
        return f"template {text} not found; restore it or remove the include"
    return f"{type(exc).__name__}: {text}" if not type(exc).__module__.startswith("jinja2") else text
