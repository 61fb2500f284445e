"""Passwords come from the environment, named by `password_env` in a config table; never
from a config file."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from scheduler.core.errors import SetupError


def password_from_env(table: str, password_env: str | None, username: str | None,
                      environ: Mapping[str, str], what: str) -> str | None:
    """The password `password_env` names (None when the table sets none), or one clear error."""
    if not password_env:
        return None
    password = environ.get(password_env) or None
    if password is None:
        raise SetupError(f"the environment variable {password_env} (password_env in {table}) is not set "
                             f"or empty; set it to the {what} password, e.g. with EnvironmentFile= in the "
                             "systemd unit")
    if not username:
        raise SetupError(f"{table} password_env is set but username is not; "
                             f"add username = \"...\" (the {what} login)")
    return password


# --- scrubbing what others say ------------------------------------------------------------

# Server text is untrusted: it may echo what we sent (an SMTP server quoting the AUTH line
# in its 535, an HTTP error page quoting the request), carry terminal escapes, or run on for
# pages. Before it becomes error text (the log, `status`, the state, a coordinator's email)
# it goes through `scrub`.
MAX_SERVER_TEXT = 200
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\\\)?|.)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
# A run of base64 this long is an encoded blob (an AUTH line, a token), not words; server
# replies have none worth keeping ("5.7.8" and queue ids are shorter).
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}|[A-Za-z0-9+/]{8,}={1,2}")
# user:password@ in a URL, and query strings (feed tokens live there).
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/@]*@)?([^\s/?#]*)[^\s]*")


def auth_variants(username: str | None, password: str | None) -> list[str]:
    """Every form in which a login goes out: the password itself, user:password (HTTP
    Basic), and the base64 of each as SMTP AUTH PLAIN/LOGIN and HTTP Basic send them."""
    if not password:
        return []
    user = username or ""
    plain = [password, f"{user}:{password}", f"\0{user}\0{password}", f"{user}\0{user}\0{password}", user + password]
    encoded = [base64.b64encode(p.encode()).decode() for p in plain]
    if user:
        encoded.append(base64.b64encode(user.encode()).decode())  # AUTH LOGIN's first line
    # A server may echo the blob without its padding, or cut it: the first 16 characters are enough to tell.
    encoded += [e.rstrip("=") for e in encoded] + [e[:16] for e in encoded if len(e) > 16]
    return sorted({v for v in plain + encoded if len(v) >= 4}, key=len, reverse=True)


def scrub(text: str | bytes, secrets: list[str] | tuple[str, ...] = (), limit: int = MAX_SERVER_TEXT) -> str:
    """Server text made fit to show: secrets (and anything that looks like an encoded
    blob) replaced by ***, URLs without their credentials, path and query, control
    characters removed, on one line, at most `limit` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text[:limit * 20]  # bound the work before the regular expressions run
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _CONTROL.sub(" ", _ESCAPE.sub("", text))
    text = redact_urls(text)
    text = _BLOB.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def redact_urls(text: str) -> str:
    """URLs in a text shown as scheme://host/… only: the credentials, path and query of a
    feed or CalDAV URL may be its secret."""
    def short(m: re.Match) -> str:
        rest = m.group(0)[len(m.group(1)):]
        host = m.group(2)
        return f"{m.group(1)}{host}" + ("/…" if len(rest) > len(host) or "@" in rest else "")
    return _URL.sub(short, text)
