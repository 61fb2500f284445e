"""A coordinator's template has a budget (`[limits] template_seconds`, `template_chars`,
`template_memory_mb`): one that runs too long or builds something too large is refused by
`validate` within seconds, in one line naming the file and line, and a running service that
reloads it keeps the last good templates and goes on sending (issue 11: `{{ 9 ** 9999999 }}`
once held `validate` 33 s and stopped a running service)."""

from __future__ import annotations

import logging
import mailbox
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.mail import transport_for
from scheduler.app.store import Store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.cli.main import main
from scheduler.compose.render import TemplateSources, Templates
from scheduler.compose.sandbox import Budget
from scheduler.core.errors import TemplateProblem
from scheduler.core.outbox import Kind

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)   # the example's December invites are due
SECONDS = "took longer than 1 s to render (limit [limits] template_seconds)"
CHARS = "more than 1000000 characters (limit [limits] template_chars)"

HOSTILE = [
    pytest.param("{{ 9 ** 9999999 }}", CHARS, id="huge-power"),
    pytest.param("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", SECONDS,
                 id="nested-ranges"),
    pytest.param('{{ "x" * 10**9 }}', CHARS, id="string-repetition"),
    pytest.param("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "calls itself too deeply",
                 id="endless-macro"),
    pytest.param("{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
                 SECONDS, id="branching-macro"),
    pytest.param("{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ f('x', 40) }}",
                 CHARS, id="doubling-macro"),
    pytest.param("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}", CHARS, id="doubling-namespace"),
    pytest.param('{{ "x"|center(10**9) }}', CHARS, id="filter-width"),
    pytest.param('{{ "%1000000000d" % 1 }}', CHARS, id="format-width"),
    pytest.param("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", CHARS, id="huge-output"),
]
# Past the sandbox's own checks, one C-level call that builds a lot or runs long: validate's
# worker process stops them (its memory cap; its clock, about 40 s of work stopped after ~4).
WORKER_ONLY = [
    pytest.param("{{ ([[0] * 999999] * 999999)|sum(start=[])|length }}", "memory", id="memory-in-one-call"),
    pytest.param("{{ ([[0] * 10] * 40000)|sum(start=[])|length }}", SECONDS, id="slow-in-one-call"),
]


def folder_with(tmp_path: Path, name: str, template: str) -> Path:
    """The example folder with one template override whose third line is `template`, and a
    1-second render budget."""
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    with (folder / "service.toml").open("a") as service:
        service.write("\n[limits]\ntemplate_seconds = 1\n")
    (folder / "templates").mkdir()
    (folder / "templates" / name).write_text(f"Hello\n\n{template}\n")
    return folder


@pytest.mark.parametrize("template, says", HOSTILE + WORKER_ONLY)
def test_validate_refuses_a_template_over_its_budget_in_one_line(tmp_path, capsys, template, says) -> None:
    """validate: one line naming the file (and line), the budget and its setting; exit 2, within seconds."""
    folder = folder_with(tmp_path, "agenda.txt", template)
    capsys.readouterr()
    started = time.monotonic()
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err, out + err
    assert len(err.splitlines()) == 1 and err.startswith("templates/agenda.txt: "), err
    assert says in err
    assert time.monotonic() - started < 120  # finished: not a timing, only "did not hang"


@pytest.mark.parametrize("template, says", HOSTILE[:4])
def test_a_running_service_keeps_the_last_good_templates(tmp_path, caplog, template, says) -> None:
    """A reload that brings a hostile template is refused: the last good templates send the invites."""
    folder = folder_with(tmp_path, "invite.txt", "{{ recipient.first_name }}, an invite for {{ group.name }}")
    caplog.set_level(logging.INFO, logger="friendtor")
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, transport_for, availability=lambda *a: {})
        (folder / "templates" / "invite.txt").write_text(f"Hello\n\n{template}\n")
        report = runner.tick(NOW)
        assert len([r for r in report.sent if r.kind == Kind.INVITE]) == 12 and not report.failed
    refused = [r for r in caplog.records if r.getMessage().startswith("config not reloaded")]
    assert len(refused) == 1 and "templates/invite.txt: line 3: " in refused[0].fields["problem"]
    assert says in refused[0].fields["problem"]
    bodies = [m.get_payload(decode=True).decode() for msg in mailbox.Maildir(folder / "var" / "outbox")
              for m in msg.walk() if m.get_content_type() == "text/plain"]
    assert len([b for b in bodies if "an invite for K Club" in b]) == 12


@pytest.mark.parametrize("template, says", HOSTILE)
def test_rendering_in_the_service_is_bounded_too(template, says) -> None:
    """At send time (no worker) the sandbox's own checks stop each hostile template with its file and line."""
    budget = Budget(1, 1_000_000, time.monotonic)
    templates = Templates(TemplateSources(override={"agenda.txt": f"Hello\n\n{template}\n".encode()}), budget)
    with pytest.raises(TemplateProblem) as caught:
        templates._render("agenda.txt", {})
    assert str(caught.value.problem()).startswith("templates/agenda.txt: line 3: ")
    assert says in caught.value.message
