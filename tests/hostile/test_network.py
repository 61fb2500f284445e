"""Peers that misbehave on purpose: every exchange ends within its one deadline, is classified
(setup or this message), never leaks a login, and SIGTERM cuts it within seconds.

The servers are raw sockets on loopback driven by a script (`Scripted`): they trickle a
greeting, headers or a reply a byte at a time (each byte well inside the socket timeout, so
only a whole-exchange deadline can cut them), hang, or echo the AUTH line in their 535.
Timing assertions are only "finished within the deadline plus a generous margin".
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from integrations import exchange, feeds, http
from integrations.mail import SmtpTransport
from scheduler.core.config import Smtp
from scheduler.core.errors import FeedUnavailable, SendError

HOST = "127.0.0.1"
DEADLINE = 1.0
MARGIN = 5.0          # "did not hang": the deadline plus this, never a tight timing
TRICKLE = 0.2         # one byte every TRICKLE s: far inside any socket timeout
USER = "friendtor"
PASSWORD = "Tr0ub4dor&3-s3cret"


# --- a scripted server -------------------------------------------------------------------

class Scripted:
    """A TCP server on loopback; each connection runs `script(conn, server)` in a thread."""

    def __init__(self, script: Callable[[socket.socket, Scripted], None]):
        self.script = script
        self.stop = threading.Event()
        self.messages: list[bytes] = []       # DATA contents received (SMTP)
        self.data_done = threading.Event()    # set when a message's final "." arrived
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            with conn:
                self.script(conn, self)
        except OSError:
            pass  # the client cut us off: that is the point

    def trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self.stop.is_set():
                return
            conn.sendall(data[i:i + 1])
            time.sleep(TRICKLE)

    def hang(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not self.stop.is_set():
            try:
                if conn.recv(4096) == b"":
                    return
            except TimeoutError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable], Scripted]]:
    servers: list[Scripted] = []

    def start(script: Callable) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture(autouse=True)
def _exchanges_may_run() -> Iterator[None]:
    yield
    exchange.resume()  # a test that called abort_all in-process leaves none behind


# --- SMTP scripts ------------------------------------------------------------------------

FOREVER = b"x" * 10_000  # a line that never ends, one byte at a time


def smtp_session(conn: socket.socket, server: Scripted, *, after_data: str = "ok", auth: str | None = None,
                 after_ehlo: str = "go on") -> None:
    """A plain SMTP server; `after_data` says how it answers the end of DATA ("ok", "trickle",
    "hang"), `auth` which mechanism it offers and echoes in its 535, `after_ehlo` "hang" to fall silent."""
    f = conn.makefile("rb")
    conn.sendall(b"220 scripted ESMTP\r\n")
    while line := f.readline():
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            if after_ehlo == "hang":
                conn.sendall(b"250 scripted\r\n")
                return server.hang(conn)
            conn.sendall(b"250-scripted\r\n" + (f"250-AUTH {auth}\r\n".encode() if auth else b"") + b"250 8BITMIME\r\n")
        elif verb == b"AUTH":
            if auth == "LOGIN":
                conn.sendall(b"334 UGFzc3dvcmQ6\r\n")
                echoed = f.readline().strip()       # the password, in base64
            else:
                echoed = line.strip()               # AUTH PLAIN <base64 of \0user\0password>
            conn.sendall(b"535 5.7.8 Authentication failed: " + echoed + b" (password " + PASSWORD.encode()
                         + b") \x1b[31m\x07 " + b"y" * 2000 + b"\r\n")
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            conn.sendall(b"250 OK\r\n")
        elif verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            content = b""
            while (chunk := f.readline()) not in (b".\r\n", b""):
                content += chunk
            server.messages.append(content)
            server.data_done.set()
            if after_data == "trickle":
                return server.trickle(conn, b"250 " + FOREVER)
            if after_data == "hang":
                return server.hang(conn)
            conn.sendall(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return None
        else:
            conn.sendall(b"502 no\r\n")
    return None


def trickled_greeting(conn: socket.socket, server: Scripted) -> None:
    server.trickle(conn, b"220 " + FOREVER)


def smtp(server: Scripted, **fields) -> Smtp:
    return Smtp(host=HOST, port=server.port, **{"security": "none", "timeout_seconds": DEADLINE, **fields})


def a_message(to: str = "member@uni.example") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "group@mentoring.example.org", to, "Agenda", "<k@x>"
    m.set_content("hello")
    return m


def timed(fn: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 (the test inspects it)
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_an_smtp_greeting_trickled_a_byte_at_a_time_is_cut_at_the_deadline_as_a_setup_failure(serve):
    """Greeting + EHLO + ... share timeout_seconds: a trickled greeting ends in time and holds the channel."""
    server = serve(trickled_greeting)
    exc, took = timed(lambda: SmtpTransport(smtp(server), None).send(a_message()))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN
    assert exc.setup and exc.transient and "did not answer within 1 s" in str(exc)


def test_an_smtp_server_that_hangs_after_ehlo_is_a_setup_failure_within_the_deadline(serve):
    """Silent after EHLO: nothing was said about the message yet, so it is the setup's failure."""
    server = serve(lambda c, s: smtp_session(c, s, after_ehlo="hang"))
    exc, took = timed(lambda: SmtpTransport(smtp(server), None).send(a_message()))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN and exc.setup


def test_an_smtp_server_slow_to_answer_data_costs_one_deadline_and_fails_that_message_only(serve):
    """A reply to DATA trickled forever: cut at the deadline, this message's transient failure (not setup)."""
    server = serve(lambda c, s: smtp_session(c, s, after_data="trickle"))
    exc, took = timed(lambda: SmtpTransport(smtp(server), None).send(a_message()))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN
    assert exc.transient and not exc.setup and server.messages


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_smtp_server_echoing_auth_in_its_535_never_gets_the_login_into_the_error(serve, mechanism):
    """The 535 quoting the AUTH line, the password and control characters: none of it in the error text."""
    server = serve(lambda c, s: smtp_session(c, s, auth=mechanism))
    transport = SmtpTransport(smtp(server, username=USER, password_env="X"), PASSWORD)
    with pytest.raises(SendError) as caught:
        transport.send(a_message())
    text = str(caught.value)
    assert "rejected the login" in text and "535" in text
    assert not [s for s in secrets() if s in text], text
    assert "\x1b" not in text and "\x07" not in text and len(text) < 600


def secrets() -> list[str]:
    """Every form the login went out in, as a server might echo it."""
    blobs = [base64.b64encode(x.encode()).decode() for x in (f"\0{USER}\0{PASSWORD}", PASSWORD, f"{USER}:{PASSWORD}")]
    return [PASSWORD, *blobs, *(b.rstrip("=") for b in blobs), *(b[:16] for b in blobs)]


def test_sigterm_hook_cuts_an_smtp_exchange_in_flight(serve):
    """abort_all (SIGTERM's hook) ends a hung exchange at once, whatever its deadline, and later ones too."""
    server = serve(lambda c, s: smtp_session(c, s, after_data="hang"))
    transport = SmtpTransport(smtp(server, timeout_seconds=120), None)
    threading.Thread(target=lambda: (server.data_done.wait(10), exchange.abort_all()), daemon=True).start()
    exc, took = timed(lambda: transport.send(a_message()))
    assert isinstance(exc, SendError) and "friendtor is stopping" in str(exc) and took < MARGIN
    exc, took = timed(lambda: transport.send(a_message()))
    assert isinstance(exc, SendError) and took < MARGIN, "an exchange started after the stop is cut too"


# --- HTTP scripts ------------------------------------------------------------------------

def trickled_headers(conn: socket.socket, server: Scripted) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    server.trickle(conn, b"X-Slow: " + FOREVER)


def trickled_body(conn: socket.socket, server: Scripted) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 10000\r\n\r\n")
    server.trickle(conn, b"BEGIN:VCALENDAR\r\n" + FOREVER)


def hung(conn: socket.socket, server: Scripted) -> None:
    server.hang(conn)


def echoing_error(conn: socket.socket, server: Scripted) -> None:
    request = conn.recv(65536)
    reason = b"Denied " + request.split(b"\r\n")[0] + b" \x1b]0;x\x07" + b" z" * 500
    conn.sendall(b"HTTP/1.1 403 " + reason + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


HTTP_CASES = [
    pytest.param(trickled_headers, "did not answer within 1 s", id="trickled-headers"),
    pytest.param(trickled_body, "took longer than 1 s to send its answer", id="trickled-body"),
    pytest.param(hung, "did not answer within 1 s", id="hangs-after-accepting"),
]


@pytest.mark.parametrize(("script", "says"), HTTP_CASES)
def test_a_feed_that_trickles_or_hangs_ends_within_its_one_deadline(serve, script, says):
    """A feed: connect, status, headers and body within `timeout`; an outage in words, without the secret path."""
    server = serve(script)
    url = f"http://{HOST}:{server.port}/private/s3cr3t-feed-token/basic.ics"
    exc, took = timed(lambda: feeds.fetch(url, timeout=DEADLINE))
    assert isinstance(exc, FeedUnavailable) and took < DEADLINE + MARGIN, exc
    assert says in str(exc) and "s3cr3t" not in str(exc)


@pytest.mark.parametrize(("script", "says"), HTTP_CASES)
def test_a_caldav_request_that_trickles_or_hangs_ends_within_its_one_deadline(serve, script, says):
    """CalDAV (http.client, no redirects): the same one deadline, the gateway's error."""
    server = serve(script)
    exc, took = timed(lambda: http.request("REPORT", f"http://{HOST}:{server.port}/cal/", b"<x/>", {},
                                           where="the CalDAV server", timeout=DEADLINE, max_bytes=1 << 20,
                                           fail=lambda text, transient: SendError(text, transient=transient)))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN and says in str(exc), exc
    assert exc.transient


def test_an_http_reason_phrase_echoing_the_request_is_scrubbed(serve):
    """A reason phrase quoting the request line (with a feed's secret path) and escapes: cut, without them."""
    server = serve(echoing_error)
    answer = http.request("GET", f"http://{HOST}:{server.port}/private/s3cr3t-token/x.ics?key=k3y", None, {},
                          where="the CalDAV server", timeout=DEADLINE, max_bytes=1 << 20,
                          fail=lambda text, transient: SendError(text, transient=transient))
    assert answer.status == 403
    assert "\x1b" not in answer.reason and "\x07" not in answer.reason and len(answer.reason) <= 80


# --- SIGTERM and secrets through a real `friendtor run` ----------------------------------

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-11-20T12:00:00Z"     # the example's December invites are due
INVITE_KEY = "invite:k-club:2026-12"


def config_folder(tmp_path: Path, server: Scripted, **smtp_fields) -> Path:
    import shutil

    example = REPO / "config" / "example"
    folder = tmp_path / "config"
    shutil.copytree(example, folder, ignore=lambda d, names: ["var"] if Path(d) == example else [])
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in smtp_fields.items())
    (folder / "service.toml").write_text(
        f'state = "var/state.json"\n\n[mail]\ntransport = "smtp"\nsender = "k-club@mentoring.example.org"\n\n'
        f'[mail.smtp]\nhost = "{HOST}"\nport = {server.port}\nsecurity = "none"\n{extra}')
    return folder


def friendtor(tmp_path: Path, *args: str, name: str) -> tuple[subprocess.Popen, Path]:
    err = tmp_path / f"{name}.err"
    with open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", *args], cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=e, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "FRIENDTOR_SMTP_PASSWORD": PASSWORD})
    return proc, err


def records(folder: Path) -> dict[str, object]:
    from scheduler.app.store import Store

    with Store(folder / "var" / "state.json", lock=False) as store:
        return {d.recipient: d for d in store.sends() if d.key == INVITE_KEY}


@pytest.mark.slow
def test_sigterm_mid_exchange_exits_in_seconds_and_the_message_goes_out_later_with_its_message_id(tmp_path, serve):
    """SIGTERM while the server sits on DATA: exit 0 in seconds, message pending (no attempt), resent same Message-ID."""
    mode = {"after_data": "hang"}
    server = serve(lambda c, s: smtp_session(c, s, after_data=mode["after_data"]))
    folder = config_folder(tmp_path, server, timeout_seconds=120)
    proc, err = friendtor(tmp_path, "run", "--config", str(folder), "--now", NOW, name="first")
    try:
        assert server.data_done.wait(60), err.read_text()
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(30) == 0, err.read_text()
        assert time.monotonic() - started < 10, "SIGTERM was honoured within a few seconds"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err.read_text()
    in_flight = server.messages[0]
    message_id = next(line.split(b":", 1)[1].strip() for line in in_flight.splitlines()
                      if line.lower().startswith(b"message-id:"))
    first = records(folder)
    assert first and all(r.status == "pending" and r.attempts == 0 for r in first.values()), first

    mode["after_data"] = "ok"
    again, err2 = friendtor(tmp_path, "run", "--config", str(folder), "--now", NOW, name="second")
    assert again.wait(60) == 0, err2.read_text()
    after = records(folder)
    assert all(r.status == "sent" for r in after.values())
    ids = [line.split(b":", 1)[1].strip() for m in server.messages[1:] for line in m.splitlines()
           if line.lower().startswith(b"message-id:")]
    assert ids.count(message_id) == 1, "the interrupted message went out again with the same Message-ID"


@pytest.mark.slow
def test_an_echoed_auth_reaches_no_log_no_state_and_no_status(tmp_path, serve):
    """A 535 that echoes AUTH PLAIN and the password: absent from the log, every file under var/, and `status`."""
    server = serve(lambda c, s: smtp_session(c, s, auth="PLAIN"))
    folder = config_folder(tmp_path, server, timeout_seconds=5, username=USER, password_env="FRIENDTOR_SMTP_PASSWORD")
    proc, err = friendtor(tmp_path, "run", "--config", str(folder), "--now", NOW, name="run")
    assert proc.wait(60) == 0, err.read_text()
    log = err.read_text()
    assert "rejected the login" in log, log
    status, status_out = friendtor(tmp_path, "status", "--config", str(folder), name="status")
    assert status.wait(60) in (0, 1), status_out.read_text()
    stored = b"".join(p.read_bytes() for p in (folder / "var").rglob("*") if p.is_file())
    assert "rejected the login" in stored.decode("utf-8", "replace")
    for where, text in (("the log", log), ("status", status_out.read_text()),
                        ("the state", stored.decode("utf-8", "replace"))):
        leaked = [s for s in secrets() if s in text]
        assert not leaked, f"{where} holds {leaked}"


# --- Google calls ------------------------------------------------------------------------

class _Call:
    """A request as googleapiclient builds one: `http` (an httplib2.Http) and `execute()`."""

    def __init__(self, url: str):
        import httplib2

        self.http = httplib2.Http(timeout=DEADLINE)  # [google] timeout_seconds
        self.url = url

    def execute(self):
        response, content = self.http.request(self.url)
        if response.status >= 500:
            raise OSError(f"HTTP {response.status}")
        return content


def _as_send_error(exc: BaseException) -> SendError:
    return SendError(f"Google Calendar: cannot reach Google ({type(exc).__name__}: {exc})", transient=True)


@pytest.mark.parametrize("script", [trickled_headers, trickled_body, hung], ids=["headers", "body", "hung"])
def test_a_google_call_to_a_trickling_server_ends_within_its_one_deadline(serve, script):
    """httplib2 bounds each wait only: the call (retries included) is cut at [google] timeout_seconds."""
    from integrations.google.client import execute

    server = serve(script)
    call = _Call(f"http://{HOST}:{server.port}/calendar/v3/freeBusy")
    exc, took = timed(lambda: execute(call, retries=5, on_error=_as_send_error))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN, exc
    assert "no answer within 1 s" in str(exc) and exc.transient
    assert call.http.timeout == DEADLINE, "the Http's own timeout is put back for the next call"


def busy(conn: socket.socket, server: Scripted) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_a_google_call_takes_no_retry_pause_that_would_run_past_its_deadline(serve):
    """503 after 503: the in-call retries stop when the next pause would not fit in the deadline."""
    from integrations.google.client import execute

    server = serve(busy)
    pauses: list[float] = []
    exc, took = timed(lambda: execute(_Call(f"http://{HOST}:{server.port}/x"), retries=5, sleep=pauses.append,
                                      on_error=_as_send_error))
    assert isinstance(exc, SendError) and "HTTP 503" in str(exc) and took < DEADLINE + MARGIN
    assert sum(pauses) < DEADLINE


# --- scrubbing ---------------------------------------------------------------------------

def test_scrub_drops_every_echo_of_a_login_urls_secrets_and_control_characters():
    """Echoed logins (padded, unpadded, cut), URLs' credentials/path/query and escapes are gone; words stay."""
    from integrations.secrets import auth_variants, scrub

    blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    text = (f"535 denied {blob} {blob.rstrip('=')} {blob[:18]} pw={PASSWORD} "
            "see https://me:hunter2@cal.example/private/t0k3n.ics?key=abc \x1b[2J\x1b]0;title\x07end")
    out = scrub(text, auth_variants(USER, PASSWORD))
    for secret in (*secrets(), "hunter2", "t0k3n", "key=abc", "\x1b", "\x07", "title"):
        assert secret not in out, (secret, out)
    assert out.startswith("535 denied") and "https://cal.example/…" in out and out.endswith("end")
    assert len(scrub("x " * 10_000)) <= 200


def test_a_google_transport_error_quoting_a_url_with_a_token_is_scrubbed():
    """httplib2's text may hold the URL with an access token in its query: it never reaches the error."""
    import httplib2

    from integrations.google.client import classify
    from scheduler.core.config import Google

    google = Google(auth="oauth", credentials="client.json", token="token.json")
    exc = httplib2.HttpLib2Error("Redirected more times than limit to "
                                 "https://www.googleapis.com/calendar/v3/x?access_token=ya29.s3cr3t-t0ken")
    error = classify(exc, google, "/etc/friendtor", "reading free/busy")
    assert error.transient and "ya29" not in str(error) and "s3cr3t" not in str(error)


# --- the same over TLS: the watchdog cuts below the TLS layer ----------------------------

@pytest.fixture(scope="module")
def tls() -> tuple[Callable, ssl.SSLContext]:
    """(a wrapper that makes a script speak TLS from the first byte, a client context trusting it)."""
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    def wrap(script: Callable) -> Callable:
        def run(conn: socket.socket, server: Scripted) -> None:
            with server_ctx.wrap_socket(conn, server_side=True) as secure:
                script(secure, server)
        return run

    return wrap, client_ctx


def test_an_https_peer_trickling_its_headers_is_cut_at_the_deadline(serve, tls):
    """CalDAV over TLS: the handshake done, headers trickled: cut at the deadline like plain HTTP."""
    wrap, client_ctx = tls
    server = serve(wrap(trickled_headers))
    exc, took = timed(lambda: http.request("GET", f"https://{HOST}:{server.port}/cal/", None, {},
                                           where="the CalDAV server", timeout=DEADLINE, max_bytes=1 << 20,
                                           fail=lambda text, transient: SendError(text, transient=transient),
                                           ssl_context=client_ctx))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN and "within 1 s" in str(exc), exc


def test_an_smtps_server_trickling_its_greeting_is_cut_at_the_deadline_as_a_setup_failure(serve, tls):
    """security = "ssl": TLS from the first byte, then a trickled greeting: cut, setup failure."""
    wrap, client_ctx = tls
    server = serve(wrap(trickled_greeting))
    transport = SmtpTransport(smtp(server, security="ssl"), None, ssl_context=client_ctx)
    exc, took = timed(lambda: transport.send(a_message()))
    assert isinstance(exc, SendError) and took < DEADLINE + MARGIN and exc.setup, exc
