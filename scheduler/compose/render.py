"""Email text from Jinja templates that coordinators may override.

Each kind of email has three templates: `<kind>.subject.txt`, `<kind>.txt` and
`<kind>.html`. A file of the same name in the config folder's `templates/` replaces the
default. Templates run in a sandbox (a template cannot reach Python internals), with
strict undefined variables (a typo is an error, never a blank in a member's inbox), and
HTML escaping on for `.html` templates only: subjects and plain text are never escaped.

Pure: the templates come in as text (`TemplateSources`, read from the folders by
`scheduler.app.templates`); nothing here opens a file.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from jinja2 import FunctionLoader, StrictUndefined, TemplateSyntaxError
from jinja2 import select_autoescape

from scheduler.compose.sandbox import Budget, BudgetedEnvironment
from scheduler.core.errors import TemplateProblem

KINDS = ("invite", "update", "cancel", "call", "agenda", "follow-up", "nudge", "review", "year-end", "alert", "report",
         "receipt", "gathering")
# Template sets: every kind, plus the report to coordinators that a message could not be delivered.
TEMPLATE_SETS = (*KINDS, "failure")
PARTS = ("subject.txt", "txt", "html")


@dataclass(frozen=True)
class TemplateSources:
    """The templates' files as read: name (relative, with "/") -> the file's bytes.

    `override` is the config folder's `templates/` (empty without one), `bundled` the
    defaults shipped with friendtor; a name in `override` wins. `override_files` are the
    names of the files directly in `templates/`, which `unknown_overrides` checks. Bytes,
    not text: a file that is not UTF-8 is a problem of the template that uses it, said
    when it is rendered, as for any other mistake in a template."""

    override: Mapping[str, bytes] = field(default_factory=dict)
    bundled: Mapping[str, bytes] = field(default_factory=dict)
    override_files: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The templates, compiled on first use, each rendering within `budget` (see
    `scheduler.compose.sandbox`; without a clock in it, only sizes are bounded)."""

    def __init__(self, sources: TemplateSources, budget: Budget = Budget()):
        self.sources = sources
        self.budget = budget
        self.on_render: Callable[[str], None] | None = None  # told each file's name as it starts (validate's worker)
        self.env = BudgetedEnvironment(
            budget,
            loader=FunctionLoader(self._source),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def _source(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        data = self.sources.override.get(name)
        if data is None:
            data = self.sources.bundled.get(name)
        if data is None:
            return None
        # As a file opened as UTF-8 text reads: a bad byte is an error, any line ending is "\n".
        # The name is the template's file name in tracebacks, which `_locate` reads.
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        return text, name, lambda: True  # sources never change under a Templates: a new one is built

    def source_of(self, name: str) -> str:
        """How a problem names a template: `templates/x.html` (override) or the bundled path."""
        if name in self.sources.override:
            return f"templates/{name}"
        return f"(bundled) templates/{name}"

    def _render(self, name: str, context: dict[str, Any]) -> str:
        chunks = None
        if self.on_render is not None:
            self.on_render(name)
        try:
            template = self.env.get_template(name)
            self.env.start()
            # Through generate(), counting: output past the budget stops the template as it
            # grows, not after it has built it all; the clock is read every 64 chunks.
            chunks = template.generate(context)
            out, size, limit, check = [], 0, self.budget.chars, self.env.check_time
            for i, chunk in enumerate(chunks):
                size += len(chunk)
                if size > limit:
                    raise self.budget.too_large()
                out.append(chunk)
                if not i & 63:
                    check()
            check()  # a render that ended late is over budget too (one slow filter call)
            return "".join(out)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(self.source_of(exc.name or name), exc.lineno, f"syntax error: {exc.message}") from None
        except TemplateProblem as exc:  # over budget: said inside the template, or between its chunks
            file, line = self._locate(exc, name)
            if exc.__traceback__ is not None and line is None and chunks is not None:
                file, line = self._where(chunks, name)
            raise TemplateProblem(file, line, exc.message) from None
        except Exception as exc:  # TemplateError, or anything a template expression raised
            file, line = self._locate(exc, name)
            raise TemplateProblem(file, line, _describe(exc)) from None
        finally:
            if chunks is not None:
                chunks.close()

    def _where(self, chunks: Any, name: str) -> tuple[str, int | None]:
        """The file and line a suspended template generator is at (the innermost of the
        templates it yields from: an include, a block, a macro's caller)."""
        frame, gen = None, chunks
        while gen is not None and getattr(gen, "gi_frame", None) is not None:
            frame, gen = gen.gi_frame, gen.gi_yieldfrom
        if frame is None or not frame.f_code.co_filename.endswith((".html", ".txt")):
            return self.source_of(name), None
        file = frame.f_code.co_filename
        try:
            line = self.env.get_template(file).get_corresponding_lineno(frame.f_lineno)
        except Exception:  # noqa: BLE001 (only the line is lost)
            return self.source_of(PurePosixPath(file).name), None
        return self.source_of(PurePosixPath(file).name), line

    def _locate(self, exc: Exception, name: str) -> tuple[str, int | None]:
        # Jinja rewrites tracebacks so that frames point at template files and lines.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename and frame.filename.endswith((".html", ".txt")):
                return self.source_of(PurePosixPath(frame.filename).name), frame.lineno
        return self.source_of(name), None

    def render(self, kind: str, context: dict[str, Any]) -> Rendered:
        subject = self._render(f"{kind}.subject.txt", context)
        # A subject is one header line whatever the template does: no CR/LF can reach the header.
        subject = re.sub(r"\s+", " ", subject).strip()
        return Rendered(subject, self._render(f"{kind}.txt", context), self._render(f"{kind}.html", context))

    def unknown_overrides(self) -> list[str]:
        """Files in the override folder that no email uses (a misspelt name would be silently ignored)."""
        known = {f"{k}.{p}" for k in TEMPLATE_SETS for p in PARTS} | {n for n in self.sources.bundled if "/" not in n}
        return sorted(n for n in self.sources.override_files if n not in known)


def _describe(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "calls itself too deeply (a macro or include that never stops); give the recursion an end"
    if isinstance(exc, MemoryError):
        return "needs more memory than friendtor has to render it"
    text = str(exc)
    if type(exc).__name__ == "UndefinedError":
        return f"{text}; check the spelling against docs/templates.md"
    if type(exc).__name__ == "SecurityError":
        return f"not allowed in templates: {text}"
    if type(exc).__name__ in ("TemplateNotFound", "TemplatesNotFound"):
        return f"template {text} not found; restore it or remove the include"
    return f"{type(exc).__name__}: {text}" if not type(exc).__module__.startswith("jinja2") else text
