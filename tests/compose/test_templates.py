"""Coordinators' template overrides: files in the config folder's templates/ replace the
bundled ones, HTML is autoescaped (subjects and text never), subjects stay one header line,
and a broken override fails `friendtor validate` with one line naming the file and line.

Each test works on a scratch copy of config/example and builds messages with `preview`
at a pinned instant (next meeting: Thursday 10 December 2026, 15:00 UTC).
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest

from integrations.calendars import group_availability
from scheduler.cli.main import main
from scheduler.app.loader import load_config
from scheduler.cli.preview import preview
from scheduler.app.templates import check_templates, default_templates, load_templates
from scheduler.compose.render import KINDS, TEMPLATE_SETS, Rendered, TemplateSources, Templates
from scheduler.core.errors import TemplateProblem
from scheduler.compose.samples import sample_contexts, sample_group
from builders import with_conference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
GID = "k-club"
NOV = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MAYA = "maya.chen@northeast-childrens.example"
JAMES = "james.carter@northeast-childrens.example"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scratch copy of config/example (with a conference, for the gathering) and an empty templates/ folder."""
    target = with_conference(tmp_path / "config")
    (target / "templates").mkdir()
    return target


def override(folder: Path, name: str, text: str) -> None:
    (folder / "templates" / name).write_text(text, "utf-8")


def edit_group(folder: Path, old: str, new: str) -> None:
    """Replace one exact piece of groups/k-club.toml (it must occur once)."""
    path = folder / "groups" / f"{GID}.toml"
    text = path.read_text("utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), "utf-8")


@cache
def _availability() -> dict:
    # Every scratch copy has the example's calendars, so they are read once.
    config = load_config(EXAMPLE)
    return group_availability(config, config.groups[GID], NOV - timedelta(days=1), NOV + timedelta(days=120))


def message(folder: Path, kind: str, to: str = MAYA) -> EmailMessage:
    config = load_config(folder)
    return preview(config, config.groups[GID], kind, to, NOV, _availability())


def part(msg: EmailMessage, content_type: str) -> str:
    (found,) = [p for p in msg.walk() if p.get_content_type() == content_type]
    return found.get_content()


def validate(folder: Path, capsys) -> tuple[int, str, str]:
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    return code, out, err


# --- overrides ------------------------------------------------------------------------

def test_text_override_changes_the_text_and_the_default_html_still_renders(folder):
    """templates/invite.txt replaces the text part; subject and HTML stay the bundled ones."""
    override(folder, "invite.txt", "Dear {{ recipient.first_name }},\nsee you {{ meeting.when }}.\n")
    msg = message(folder, "invite")
    assert part(msg, "text/plain") == \
        "Dear Maya,\nsee you Thursday 10 December 2026, 10:00–11:00 (America/New_York).\n"
    html = part(msg, "text/html")
    assert "You're invited to our next meeting" in html and html.rstrip().endswith("</html>")
    assert msg["Subject"].startswith("Invitation: K Club, Thursday 10 December 2026")


@pytest.mark.parametrize(("name", "text", "where", "expected"), [
    ("invite.html", "<p>Hi {{ recipient.first_name }}</p>\n", "text/html", "<p>Hi Maya</p>\n"),
    ("invite.subject.txt", "Meet {{ meeting.date }}\n", "Subject", "Meet Thursday 10 December 2026"),
    ("_layout.html", "<html><body>{% block body %}{% endblock %}</body></html>\n", "text/html", "<html><body>"),
], ids=["html", "subject", "shared-layout"])
def test_override_of_one_part_changes_only_that_part(folder, name, text, where, expected):
    """Each part (subject, HTML, even the shared layout) can be overridden on its own."""
    override(folder, name, text)
    msg = message(folder, "invite")
    got = msg["Subject"] if where == "Subject" else part(msg, where)
    assert got.startswith(expected)
    assert part(msg, "text/plain").startswith("Hello Maya,\n\nK Club meets next on")


def test_copies_of_every_bundled_template_validate(folder, capsys):
    """Overriding with the bundled files themselves, partials included, is valid (no "unknown file")."""
    for path in default_templates().iterdir():
        shutil.copy(path, folder / "templates" / path.name)
    code, out, err = validate(folder, capsys)
    assert (code, err) == (0, "")
    assert ": ok: 1 group: k-club (12 members)" in out


# --- escaping -------------------------------------------------------------------------

NASTY = '<b>&"'


@pytest.fixture
def nasty_folder(folder: Path) -> Path:
    """The example with markup in the group's name and in James Carter's name."""
    edit_group(folder, 'name = "K Club"', 'name = "K <b>&\\" Club"')
    edit_group(folder, 'name = "James Carter"', 'name = "James <b>&\\" Carter"')
    return folder


@pytest.mark.parametrize("kind", KINDS)
def test_html_escapes_names_text_and_subject_do_not(nasty_folder, kind):
    """`<b>&"` in a name is &lt;b&gt;&amp;&#34; in HTML and itself in the text part and the Subject."""
    msg = message(nasty_folder, kind)
    text, html = part(msg, "text/plain"), part(msg, "text/html")
    assert f"K {NASTY} Club" in msg["Subject"]
    assert f"K {NASTY} Club" in text or kind == "agenda"  # the text agenda never names the group
    assert "&lt;" not in text and "&amp;" not in text and "&#34;" not in text
    assert "K &lt;b&gt;&amp;&#34; Club" in html
    assert NASTY not in html and "&amp;lt;" not in html  # escaped once, not twice
    if kind in ("agenda", "alert"):  # these list the other members by name
        assert f"James {NASTY} Carter" in text
        assert "James &lt;b&gt;&amp;&#34; Carter" in html
    back = email.message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert f"K {NASTY} Club" in back["Subject"]


def test_markup_in_a_recipients_name_stays_one_address(nasty_folder):
    """A display name with <, & and a quote is quoted in To: still one address, the right one."""
    msg = message(nasty_folder, "invite", JAMES)
    back = email.message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)
    (to,) = back["To"].addresses
    assert (to.display_name, to.addr_spec) == (f"James {NASTY} Carter", JAMES)


# --- subjects stay one line -----------------------------------------------------------

@pytest.mark.parametrize(("subject", "mission", "expected"), [
    ("Invitation:\n{{ group.name }}\r\nBcc: evil@example.org\n", None, "Invitation: K Club Bcc: evil@example.org"),
    ("{{ group.name }}\u2028Bcc: evil@example.org", None, "K Club Bcc: evil@example.org"),
    ("{{ group.mission }}", "Line one\\r\\nBcc: evil@example.org", "Line one Bcc: evil@example.org"),
], ids=["newline-in-template", "line-separator", "newline-in-value"])
def test_subject_override_renders_as_one_header_line(folder, subject, mission, expected):
    """Line breaks in a subject template or in a value it shows become spaces: no header injection."""
    override(folder, "invite.subject.txt", subject)
    if mission is not None:  # `mission` may span lines (it is prose), unlike names
        edit_group(folder, 'mission = "Each of us submits a career development award application by June 2027, '
                   'with the group\'s feedback on every draft."', f'mission = "{mission}"')
    msg = message(folder, "invite")
    assert msg["Subject"] == expected
    data = msg.as_bytes(policy=policy.SMTP)
    back = email.message_from_bytes(data, policy=policy.default)
    assert back["Subject"] == expected
    headers = data.split(b"\r\n\r\n", 1)[0]  # the mission may well span lines in the body
    assert back.get_all("Bcc") is None and b"\r\nBcc:" not in headers


# --- broken overrides -----------------------------------------------------------------

BROKEN = [
    # id, file, contents, line named (None: the file as a whole), what the line says
    ("syntax", "invite.txt", "Hello {{ recipient.first_name }},\n\n{% if %}yes{% endif %}\n", 3, "syntax error"),
    ("undefined", "invite.txt", "Hello,\n\n{{ recipient.nmae }}\n", 3, "'nmae'"),
    ("undefined-in-subject", "agenda.subject.txt", "Agenda for {{ meeting.dat }}", 1, "'dat'"),
    ("sandbox-mro", "invite.txt", "Hello,\n{{ ''.__class__.__mro__ }}\n", 2, "not allowed"),
    ("sandbox-class", "agenda.html", "<p>\n\n{{ group.__class__ }}</p>\n", 3, "not allowed"),
    ("runtime", "follow-up.txt", "Hello,\n{{ 1 / 0 }}\n", 2, "division by zero"),
    ("missing-include", "review.txt", "Hello,\n\n\n{% include '_missing.txt' %}\n", 4, "_missing.txt"),
    ("broken-partial", "_macros.html",
     "{% macro when_box(meeting, group) %}\n<p>{{ meeting.tme }}</p>\n{% endmacro %}\n", 2, "'tme'"),
    # Fails only where addresses are not shared (email is none): samples cover both settings.
    ("needs-shared-emails", "agenda.txt", "Hello,\n{{ group.members[0].email.upper() }}\n", 2, "upper"),
    ("unknown-file", "agnda.html", "<p>{{ agenda.mission }}</p>\n", None, "not a template friendtor uses"),
]


@pytest.mark.parametrize(("name", "text", "line", "says"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_override_fails_validate_with_one_line(folder, capsys, name, text, line, says):
    """validate exits 2 with one line: templates/<file>, its line number, what is wrong; no traceback."""
    override(folder, name, text)
    code, out, err = validate(folder, capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    where = f"templates/{name}: line {line}: " if line else f"templates/{name}: "
    assert lines[0].startswith(where), lines[0]
    assert says in lines[0]
    assert "Traceback" not in err and "(bundled)" not in err


# --- the bundled templates ------------------------------------------------------------

class TagBalance(HTMLParser):
    """Counts open elements: every start tag needs its end tag, in order (void elements aside)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append(f"</{tag}> with {self.open} open")


@pytest.mark.parametrize("share", [False, True], ids=["private", "shared"])
@pytest.mark.parametrize("kind", TEMPLATE_SETS)
def test_every_bundled_template_renders_sample_data(kind, share):
    """Each template set (every kind, and the failure report) renders: one-line subject, text, balanced HTML."""
    rendered = load_templates(None).render(kind, sample_contexts(sample_group(share=share))[kind])
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.startswith("Hello Maya,")
    checker = TagBalance()
    checker.feed(rendered.html)
    checker.close()
    assert checker.mismatched == [] and checker.open == []
    assert rendered.html.rstrip().endswith("</html>")


def test_bundled_templates_pass_their_own_check(tmp_path):
    """With no overrides, the template check that `validate` runs finds nothing."""
    assert check_templates(tmp_path) == []


# --- rendering is pure; reading the folders is the app's ------------------------------

def test_templates_render_from_text_alone():
    """The renderer takes the templates as bytes: no folder is read, and a problem names
    an override as templates/x and a default as (bundled) templates/x."""
    bundled = {"x.subject.txt": b"Hi {{ who }}", "x.txt": b"Text {{ who }}\n", "x.html": b"<p>{{ who }}</p>\n",
               "y.subject.txt": b"y", "y.txt": b"\n{{ nope }}\n", "y.html": b""}
    templates = Templates(TemplateSources(override={"x.txt": b"Mine\r\n{{ who }}\r\n"}, bundled=bundled))
    assert templates.render("x", {"who": "<Ana>"}) == Rendered("Hi <Ana>", "Mine\n<Ana>\n", "<p>&lt;Ana&gt;</p>\n")
    with pytest.raises(TemplateProblem) as bad:
        templates.render("y", {})
    assert (bad.value.file, bad.value.line) == ("(bundled) templates/y.txt", 2)
    broken = Templates(TemplateSources(override={"x.txt": b"\n\n{{ who.name }}"}, bundled=bundled))
    with pytest.raises(TemplateProblem) as bad:
        broken.render("x", {"who": "Ana"})
    assert (bad.value.file, bad.value.line) == ("templates/x.txt", 3)


def test_an_override_that_is_not_utf8_fails_validate_with_one_line(folder, capsys):
    """A template file that is not UTF-8 is that template's problem, said in one line."""
    (folder / "templates" / "invite.txt").write_bytes(b"Hello \xff {{ recipient.first_name }}\n")
    code, out, err = validate(folder, capsys)
    assert code == 2 and err.startswith("templates/invite.txt: UnicodeDecodeError: ") and len(err.splitlines()) == 1


def test_templates_are_read_once(folder):
    """A Templates renders what was read when it was built (the service builds a new one when the
    config folder changes, after `validate`'s checks), not a file edited since."""
    override(folder, "invite.subject.txt", "First {{ group.name }}")
    templates = load_templates(folder / "templates")
    override(folder, "invite.subject.txt", "Second {{ group.name }}")
    context = sample_contexts(sample_group(share=False))["invite"]
    assert templates.render("invite", context).subject == "First Sample Group"
    assert load_templates(folder / "templates").render("invite", context).subject == "Second Sample Group"


def test_loading_a_config_does_not_load_the_message_pipeline():
    """Importing the config loader imports no message building (compose) and no Jinja: the
    template check imports them when it runs."""
    code = ("import sys\n"
            "import scheduler.app.loader\n"
            "bad = [m for m in sys.modules if m.startswith(('scheduler.compose', 'scheduler.app.templates', 'jinja2'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_budgeted_sandbox_leaves_ordinary_template_code_alone() -> None:
    """range() keeps its length, index, reverse and membership; small powers, repetitions and formats work."""
    import time

    from scheduler.compose.sandbox import Budget

    source = ("{{ range(5)|length }} {{ range(5)[2] }} {{ range(3)|reverse|join(',') }} {{ 2 in range(3) }} "
              "{% for i in range(2) %}{{ loop.index }}{% endfor %} {{ 2 ** 10 }} {{ '-' * 3 }} {{ [1] + [2] }} "
              "{{ '%03d' % 7 }} {{ 'ab'|center(6)|length }} {% set ns = namespace(n=0) %}{% set ns.n = ns.n + 1 %}"
              "{{ ns.n }}")
    templates = Templates(TemplateSources(override={"x.txt": source.encode()}), Budget(2, 10_000, time.monotonic))
    assert templates._render("x.txt", {}) == "5 2 2,1,0 True 12 1024 --- [1, 2] 007 6 1"


@pytest.mark.parametrize("kind", ["invite", "agenda", "follow-up", "nudge"])
def test_the_reply_paragraph_comes_before_the_sign_off(kind):
    """Invite, agenda, follow-up and nudge end with the numbered goals and the reply paragraph, then the sign-off."""
    context = sample_contexts(sample_group(share=False))[kind]
    rendered = load_templates(None).render(kind, context)
    sign_off = " and ".join(context["group"]["coordinators"])
    for body in (rendered.text, rendered.html):
        assert "replying to this email" in body and "commit:" in body and "undo" in body
        assert body.index("replying to this email") < body.rindex(sign_off), kind


def test_the_follow_up_says_reply_and_the_coordinators_can_still_add_items():
    """The follow-up no longer sends members to the coordinators for each item, and still says coordinators can add one."""
    rendered = load_templates(None).render("follow-up", sample_contexts(sample_group(share=False))["follow-up"])
    for body in (rendered.text, rendered.html):
        flat = " ".join(body.split())
        assert "and it goes on the next agenda" in flat and "can add it for you too" in flat
        assert "tell " not in flat.lower()


def test_the_call_lists_numbered_goals_and_the_reply_lines():
    """The call names the meeting, when the agenda goes out, the member's open goals numbered, and each reply keyword."""
    context = sample_contexts(sample_group(share=False))["call"]
    rendered = load_templates(None).render("call", context)
    assert context["my_goals"] and context["agenda_date"] in rendered.text
    for g in context["my_goals"]:
        assert f"{g['number']}. {g['text']}" in rendered.text and g["text"] in rendered.html
    for keyword in ("done:", "commit:", "celebrate:", "agenda:", "away:", "undo"):
        assert keyword in rendered.text and keyword in rendered.html
