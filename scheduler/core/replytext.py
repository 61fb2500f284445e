"""What a member wrote in a reply, without what they quoted. Pure: a message in, text out.

Members reply from Gmail, Outlook (desktop and web), Apple Mail and phones, top-posted, often
HTML-only, with the whole original below and a signature. Only the lines they wrote may be
read as items: an "agenda: old item" in the quoted original must never come back as new.
So the text is cut at the first sign of the original (the clients' markers below) and any
`>` line is dropped. Cutting too much loses a line the member can send again; cutting too
little would file someone's old words as new, so the markers err on the side of cutting.

HTML-only replies are turned into text by a small linear scanner (see the HTML section for
why not html.parser): quoted blocks (`<blockquote>`, Gmail's `gmail_quote`, Outlook's
`divRplyFwdMsg`/`appendonsend`) and marked signatures are skipped while the text is gathered.
The reply-parsing libraries on PyPI were looked at: `email-reply-parser` (last release 2020)
knows Gmail's "On ... wrote:", `>` and signatures but not Outlook's header block or HTML;
none fitted better than these rules, so friendtor adds no dependency for this.

Everything is bounded: at most MAX_HTML characters of HTML and MAX_CHARS of text are looked
at, at most MAX_PARTS MIME parts, and a broken part or charset reads as no text, never an error.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html import unescape

MAX_CHARS = 256 * 1024   # of text read from one reply; more is cut, with a note
MAX_HTML = 1024 * 1024   # of HTML converted (markup is bulkier than the text it holds)
MAX_PARTS = 100          # MIME parts looked at in one message
MAX_DEPTH = 20           # nesting of multiparts followed

# A line that starts the quoted original, or a signature: everything from it on is not new.
_CUT = [re.compile(p, re.IGNORECASE) for p in (
    r"^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{2,}",
    r"^-{2,}\s*forwarded message\s*-{2,}",
    r"^begin forwarded message:",
    r"^_{8,}\s*$",                             # Outlook's rule above the From:/Sent: block
    r"^-- ?$",                                 # the signature separator
    r"^(sent from|sent via|sent with|get outlook for)\b.{0,60}$",   # phones and Outlook mobile
    r"^from: .{0,300}\bsent: ",                # Outlook's block flattened onto one line
)]
# "On <date>, <name> wrote:" (Gmail, Apple Mail, Thunderbird, Android), which a client may wrap
# over up to three lines; and its German, French and Spanish forms.
_ON = re.compile(r"^(on|am|le|el)\s", re.IGNORECASE)
_WROTE = re.compile(r"((wrote|a écrit|escribió)\s*:|\bschrieb\b.{0,300}:)\s*$", re.IGNORECASE)
# Outlook's header block: "From:" then, within a few lines, "Sent:" or "Date:".
_FROM = re.compile(r"^(from|von|de)\s*:", re.IGNORECASE)
_SENT = re.compile(r"^(sent|date|gesendet|envoyé|enviado)\s*:", re.IGNORECASE)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000\t"), " ")


def new_text(message: EmailMessage | Message | bytes | str) -> tuple[str, bool]:
    """The text the member wrote (quotes, signature and original removed), and whether the
    reply was longer than MAX_CHARS and cut."""
    text, cut = body_text(message) if not isinstance(message, str) else _bounded(message)
    return strip_quoted(text), cut


def body_text(message: EmailMessage | Message | bytes) -> tuple[str, bool]:
    """The reply's text: its first text/plain part, else its first text/html part as text;
    attachments are not read. ("", False) for a message with neither."""
    try:
        if isinstance(message, bytes):
            message = BytesParser(policy=policy.default).parsebytes(message[:MAX_HTML * 4])
        plain, html = _parts(message)
        if plain is not None and plain.strip():
            return _bounded(plain)
        if html is not None:
            return _bounded(html_to_text(html))
    except Exception:  # noqa: BLE001 - a broken message is no text: one message's failure stays its own
        pass
    return "", False


def _parts(message: Message) -> tuple[str | None, str | None]:
    """The first text/plain and text/html bodies, walking the MIME tree without recursion
    (a message nested a thousand deep must not exhaust the stack)."""
    plain = html = None
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS and (plain is None or html is None):
        part, depth = stack.pop()
        seen += 1
        if part.is_multipart():
            if depth < MAX_DEPTH and part.get_content_type() != "message/rfc822":  # a forwarded mail is not theirs
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend((c, depth + 1) for c in reversed(children[:MAX_PARTS]))
            continue
        if part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _decode(part)
            if "flowed" in str(part.get_param("format", "")).lower():
                plain = _unflow(plain, str(part.get_param("delsp", "")).lower() == "yes")
        elif kind == "text/html" and html is None:
            html = _decode(part)
    return plain, html


def _decode(part: Message) -> str:
    """A part's text in its charset; an unknown or lying charset is read as UTF-8 with
    replacement characters rather than refused."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    raw = raw[:MAX_HTML]
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except (LookupError, ValueError):
        return raw.decode("utf-8", errors="replace")


def _unflow(text: str, delsp: bool) -> str:
    """Undo format=flowed (RFC 3676): a line ending in a space goes on in the next line."""
    out: list[str] = []
    joining = False
    for line in text.splitlines():
        if joining and out:
            out[-1] += line
        else:
            out.append(line)
        joining = line.endswith(" ") and line != "-- "
        if joining and delsp:
            out[-1] = out[-1][:-1]
    return "\n".join(out)


def _bounded(text: str) -> tuple[str, bool]:
    text = text[:MAX_CHARS + 1]
    return text[:MAX_CHARS], len(text) > MAX_CHARS


def strip_quoted(text: str) -> str:
    """The lines before the first sign of the original or a signature, without `>` lines."""
    lines = text.translate(_INVISIBLE).translate(_SPACES).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, raw in enumerate(lines):
        line = raw[:2000].strip()
        # A bold "*From:*" (Outlook's block in a plain rendition) is the block too.
        if _ends_new_text(line, lines, i) or _ends_new_text(line.strip("*_").strip(), lines, i):
            break
        if not line.startswith(">"):
            kept.append(raw.rstrip())
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept).strip("\n")


def _ends_new_text(line: str, lines: list[str], i: int) -> bool:
    if any(p.search(line) for p in _CUT):
        return True
    if _ON.match(line):
        # "On Mon, 2 Mar 2026 at 10:00, Friendtor <x@y>\nwrote:" is cut wherever the client wrapped it.
        joined = ""
        for x in lines[i:i + 3]:
            joined = f"{joined} {x[:300].strip()}"
            if _WROTE.search(joined):
                return True
    if _FROM.match(line):
        following = [x[:200].strip().strip("*_").strip() for x in lines[i + 1:i + 5]]
        return any(_SENT.match(x) for x in following)
    return False


# --- HTML ---------------------------------------------------------------------------------
# A scanner of its own, not html.parser: the standard parser rescans to the end of the input
# at each unclosed "<!--" (a reply of "<!--" repeated took minutes), and a stranger's mail must
# not cost that. This one looks at each character once: a tag runs from "<" to the next ">",
# a comment to the next "-->", and whatever is left unclosed at the end is dropped.

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "ul", "ol", "pre",
          "section", "article", "header", "footer", "dd", "dt"}
_SKIP = {"blockquote", "style", "script", "head", "title", "template", "noscript"}
# Where the clients put the quoted original or the signature, by class or id.
_QUOTE_MARKS = re.compile(r"gmail_quote|gmail_signature|gmail_extra|moz-cite-prefix|moz-signature|"
                          r"divRplyFwdMsg|appendonsend|yahoo_quoted|protonmail_quote|^signature$|"
                          r"OutlookMessageHeader|ms-outlook-mobile-signature", re.IGNORECASE)
# Outlook's markers after which nothing is the member's.
_STOP_MARKS = re.compile(r"divRplyFwdMsg|appendonsend", re.IGNORECASE)
_VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source", "embed"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]{0,30})")
_MARK_ATTR = re.compile(r"""\b(?:class|id)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)


def _tokens(html: str):
    """("tag", name, closing, attribute text) and ("text", data) in order, in linear time."""
    i, n = 0, len(html)
    while i < n:
        lt = html.find("<", i)
        if lt < 0:
            yield ("text", html[i:])
            return
        if lt > i:
            yield ("text", html[i:lt])
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            if end < 0:
                return
            i = end + 3
            continue
        gt = html.find(">", lt + 1)
        if gt < 0:
            return
        tag = _TAG.match(html, lt, min(gt, lt + 40))
        if tag:
            yield ("tag", tag.group(2).lower(), bool(tag.group(1)), html[tag.end():min(gt, tag.end() + 2000)])
        elif not html.startswith(("<!", "<?", "</"), lt):
            yield ("text", html[lt:gt + 1])   # "a < b > c" in prose is text
        i = gt + 1


def html_to_text(html: str) -> str:
    """The visible text of an HTML reply, one line per block, quoted parts and signatures left out."""
    out: list[str] = []
    size = 0
    skip_tag: str | None = None   # the element whose content is skipped
    skip_depth = 0                # how many of that tag are open inside it
    for token in _tokens(html[:MAX_HTML]):
        if size > MAX_CHARS:
            break
        if token[0] == "text":
            if skip_tag is None:
                piece = re.sub(r"\s+", " ", unescape(token[1][:MAX_CHARS + 1]))[:MAX_CHARS + 1 - size]
                out.append(piece)
                size += len(piece)
            continue
        _, name, closing, attrs = token
        if skip_tag is not None:
            if name == skip_tag and name not in _VOID:
                skip_depth += -1 if closing else 1
                if skip_depth <= 0:
                    skip_tag = None
            continue
        if not closing:
            marks = [next(v for v in m.groups() if v is not None) for m in _MARK_ATTR.finditer(attrs)]
            words = " ".join(marks).split()
            if any(_STOP_MARKS.search(w) for w in words):
                break
            if name in _SKIP or any(_QUOTE_MARKS.search(w) for w in words):
                if name not in _VOID and not attrs.rstrip().endswith("/"):
                    skip_tag, skip_depth = name, 1
                continue
        if name in _BLOCK:
            out.append("\n")
            if name == "li" and not closing:
                out.append("- ")
    lines = (line.strip() for line in "".join(out).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
