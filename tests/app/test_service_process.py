"""`friendtor run` as a real process: crashes, signals, a second instance, damaged state, live edits.

Each test starts `python -m scheduler.cli run ...` from the repository root against a copy of
the example config in tmp_path, with real SMTP servers on loopback (smtp_servers.py) or the
Maildir transport, and looks at what the servers received, the state file and the logs.
Output goes to files, never pipes, so a chatty process can never block on a full pipe.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from smtp_servers import PASSWORD, USERNAME, Server

from scheduler.app.store import Store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
NOW = "2026-11-20T12:00:00Z"          # 20 days before the example's December meeting: invites are due
INVITE_KEY = "invite:k-club:2026-12"
SENDER = "k-club@mentoring.example.org"
ENV_PASSWORD = "FRIENDTOR_SMTP_PASSWORD"
NEW_MEMBER = "noor.haddad@cedar-childrens.example"

_runs = itertools.count(1)


# --- helpers --------------------------------------------------------------------------------

def copy_example(dest: Path) -> Path:
    """The example config without its var/ (state and outbox belong to whoever ran it last)."""
    shutil.copytree(EXAMPLE, dest, ignore=lambda d, names: ["var"] if Path(d) == EXAMPLE else [])
    return dest


def smtp_service(server: Server, **smtp: str) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in smtp.items())
    return (f'state = "var/state.json"\n\n[mail]\ntransport = "smtp"\nsender = "{SENDER}"\n\n'
            f'[mail.smtp]\nhost = "{server.host}"\nport = {server.port}\ntimeout_seconds = 5\n{extra}')


MAILDIR_SERVICE = f'state = "var/state.json"\ntick_minutes = 1\n\n[mail]\ntransport = "maildir"\nsender = "{SENDER}"\n'


def members(folder: Path) -> set[str]:
    group = tomllib.loads((folder / "groups" / "k-club.toml").read_text())
    return {m["email"] for m in group["members"]}


@dataclass
class Run:
    """One `friendtor` process, its output in files."""

    proc: subprocess.Popen
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"friendtor did not exit within {timeout} s; stderr:\n{self.stderr}") from None

    def events(self) -> list[dict]:
        """The JSON log lines written so far (the last one may still be half written)."""
        out = []
        for line in self.stderr.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out


Start = Callable[..., Run]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts `python -m scheduler.cli ARGS...`; kills whatever is still running at the end."""
    runs: list[Run] = []

    def launch(*args: str, env: dict[str, str] | None = None) -> Run:
        n = next(_runs)
        out, err = tmp_path / f"run-{n}.out", tmp_path / f"run-{n}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", *args], cwd=REPO,
                                    stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        run = Run(proc, out, err)
        runs.append(run)
        return run

    try:
        yield launch
    finally:
        for run in runs:
            if run.proc.poll() is None:
                run.proc.kill()
            run.proc.wait(10)


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def parsed(content: bytes) -> EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)


def recipient(message: EmailMessage) -> str:
    return email.utils.parseaddr(str(message["To"]))[1]


def outbox(folder: Path) -> list[dict]:
    """The outbox as the service left it on disk: the state file plus its journal."""
    with Store(folder / "var" / "state.json", lock=False) as store:
        return store.sends()


def sending_marked(folder: Path) -> bool:
    try:
        return any(d.status == "sending" for d in outbox(folder))
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def run_args(folder: Path, *extra: str) -> tuple[str, ...]:
    return ("run", "--config", str(folder), *extra)


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "internal error" not in text, text


# --- 1. kill -9 during sends ---------------------------------------------------------------

# Where each run is killed: after some seconds (during start-up, planning or sending), as soon
# as a batch is marked "sending" (nothing delivered yet), or once the server has received k
# messages in that run (the k-th is then in flight: the server has it, the client has no 250).
# A crash inside a batch makes the next run resend the whole batch; only "messages 6" (the
# second batch under way) moves on, so most points are reached before the work runs out.
KILL_POINTS = [("seconds", 0.3), ("sending", 0), ("messages", 1), ("seconds", 0.9), ("messages", 3),
               ("messages", 5), ("messages", 6), ("messages", 6)]


@pytest.mark.slow
def test_kill_9_during_sends_loses_nothing_and_duplicates_only_with_the_same_message_id(
        tmp_path: Path, slow_smtp: Server, start: Start) -> None:
    """SIGKILL at any point of a tick: every invite arrives, a resend keeps its Message-ID, state ends all "sent"."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(smtp_service(slow_smtp, security="none"))
    everyone = members(folder)
    args = run_args(folder, "--now", NOW)

    kills = 0
    for how, amount in KILL_POINTS:
        before = len(slow_smtp.received)
        run = start(*args)
        began = time.monotonic()
        trigger = {
            "seconds": lambda: time.monotonic() - began >= amount,
            "sending": lambda: sending_marked(folder),
            "messages": lambda: len(slow_smtp.received) - before >= amount,
        }[how]
        wait_for(lambda: trigger() or not run.alive(), 30, f"kill point {how} {amount}", every=0.005)
        if not run.alive():  # finished before the kill point: that is the end of the story
            assert run.wait() == 0, run.stderr
            break
        run.proc.send_signal(signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
        kills += 1
    assert kills >= 6, "too few kill points were reached to mean anything"

    final = start(*args)
    assert final.wait() == 0, final.stderr
    no_traceback(final.stderr)

    docs = outbox(folder)
    invites = [d for d in docs if d.key == INVITE_KEY]
    assert {d.recipient for d in invites} == everyone and len(invites) == 12
    assert all(d.status == "sent" for d in invites), [(d.recipient, d.status) for d in invites]
    assert not [d for d in docs if d.status in ("pending", "sending", "retry")]
    assert stat.S_IMODE((folder / "var" / "state.json").stat().st_mode) == 0o600

    copies: dict[str, list[EmailMessage]] = defaultdict(list)
    for r in slow_smtp.received:
        m = parsed(r.content)
        assert r.rcpt_tos == (recipient(m),)
        copies[recipient(m)].append(m)
    assert set(copies) == everyone, "every member got the invite at least once"
    stored = {d.recipient: d.message_id for d in invites}
    for who, got in copies.items():
        assert {m["X-Friendtor-Key"] for m in got} == {INVITE_KEY}
        assert {m["Message-ID"] for m in got} == {stored[who]}, f"a resend to {who} changed its Message-ID"
        assert len(got) <= 1 + kills, f"{who} got {len(got)} copies after {kills} crashes"

    received = len(slow_smtp.received)
    again = start(*args)
    assert again.wait() == 0, again.stderr
    assert len(slow_smtp.received) == received, "a finished tick sent something again"
    assert "nothing was due" in again.stdout


# --- 2. SIGTERM mid-tick -------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_mid_tick_cuts_the_send_in_progress_and_keeps_it_and_the_rest_pending(
        tmp_path: Path, slow_smtp: Server, start: Start) -> None:
    """SIGTERM during sends: exit 0 soon, sent ones recorded, the one in flight and the rest pending, sent next run."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(smtp_service(slow_smtp, security="none"))
    everyone = members(folder)
    args = run_args(folder, "--now", NOW)

    run = start(*args)
    wait_for(lambda: slow_smtp.received, 30, "the first message", every=0.005)
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=5) == 0, run.stderr
    no_traceback(run.stderr)

    first = {recipient(parsed(r.content)) for r in slow_smtp.received}
    docs = {d.recipient: d.status for d in outbox(folder) if d.key == INVITE_KEY}
    assert set(docs) == everyone
    sent = {who for who, status in docs.items() if status == "sent"}
    pending = {who for who, status in docs.items() if status == "pending"}
    # The send in flight was cut (the server may have the message, without having said 250):
    # it is pending again, not sent, not failed.
    assert sent <= first and len(first - sent) <= 1 and len(slow_smtp.received) == len(first)
    assert pending == everyone - sent and pending, "the rest is pending, not lost"
    ids = {recipient(parsed(r.content)): parsed(r.content)["Message-ID"] for r in slow_smtp.received}

    n = len(slow_smtp.received)
    rest = start(*args)
    assert rest.wait() == 0, rest.stderr
    second = [parsed(r.content) for r in slow_smtp.received[n:]]
    assert sorted(recipient(m) for m in second) == sorted(pending), "the next run sends exactly the rest"
    for m in second:
        assert ids.get(recipient(m), m["Message-ID"]) == m["Message-ID"], "the cut one is resent with its Message-ID"
    assert all(d.status == "sent" for d in outbox(folder) if d.key == INVITE_KEY)


# --- 3. a second instance ------------------------------------------------------------------

def test_a_second_instance_on_the_same_state_is_refused(tmp_path: Path, start: Start) -> None:
    """A second `run` on a state the service holds exits 2 with one "already running" line; the first stops on SIGTERM."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(MAILDIR_SERVICE)
    service = start(*run_args(folder))
    try:
        wait_for(lambda: (folder / "var" / "state.json").exists() or not service.alive(), 30, "the state file")
        assert service.alive(), service.stderr

        second = start(*run_args(folder, "--once"))
        assert second.wait() == 2
        lines = second.stderr.splitlines()
        assert len(lines) == 1, lines
        assert "already running" in lines[0] and f"pid {service.proc.pid}" in lines[0]
        no_traceback(second.stderr)
        assert service.alive()
    finally:
        service.proc.send_signal(signal.SIGTERM)
    assert service.wait(timeout=10) == 0, service.stderr
    no_traceback(service.stderr)
    assert service.stderr.rstrip().endswith("stopped")


# --- 4. a damaged state file ---------------------------------------------------------------

DAMAGED = {
    "garbage": (b"\x89PNG\r\n\x1a\n\x00\xffnot json at all", "damaged"),
    "truncated JSON": (b'{"meetings":{"1":{"cycle":"2026-12","group":"k-cl', "damaged"),
    "JSON list": (b'[{"key": "invite:k-club:2026-12"}]', "not a friendtor state file"),
    "documents that are not objects": (b'{"outbox": {"1": "sent"}}', "not a friendtor state file"),
    "schema that is not a number": (b'{"meta": {"1": {"schema": "1"}}}', "not a friendtor state file"),
}


@pytest.mark.parametrize("content, says", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_state_file_stops_run_and_is_left_alone(tmp_path: Path, start: Start, content: bytes,
                                                          says: str) -> None:
    """A state file that is not a readable state: exit 2, one line naming the file, the file untouched."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(MAILDIR_SERVICE)
    path = folder / "var" / "state.json"
    path.parent.mkdir()
    path.write_bytes(content)
    os.chmod(path, 0o600)
    before = path.stat()

    run = start(*run_args(folder, "--once"))
    assert run.wait() == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ") and says in lines[0]
    no_traceback(run.stderr)
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert not (folder / "var" / "outbox").exists(), "nothing was sent"


# --- 5. the config edited while the service runs --------------------------------------------

def test_config_edits_while_running_are_reloaded_or_reported(tmp_path: Path, start: Start) -> None:
    """A broken edit is logged as validate reports it and the service goes on; a good edit is reloaded and acted on."""
    # Two services side by side; after the edits SIGUSR1 asks each for its next tick at once
    # (without it the next tick is tick_minutes, a minute, away).
    broken, good = copy_example(tmp_path / "broken"), copy_example(tmp_path / "good")
    for folder in (broken, good):
        (folder / "service.toml").write_text(MAILDIR_SERVICE)
        group = folder / "groups" / "k-club.toml"
        # Invite 60 days ahead, so a future meeting is due on whatever day the real clock says.
        group.write_text(group.read_text().replace("invite_days_before = 21", "invite_days_before = 60"))
    services = {folder: start(*run_args(folder, "--log-format", "json")) for folder in (broken, good)}
    try:
        for folder, service in services.items():
            wait_for(lambda: any(e["event"] == "tick" for e in service.events()) or not service.alive(),
                     60, "the first tick")
            assert service.alive(), service.stderr

        group = broken / "groups" / "k-club.toml"
        group.write_text(group.read_text().replace('"Asia/Kolkata"', '"Mars/Olympus_Mons"'))
        validate = subprocess.run([sys.executable, "-m", "scheduler.cli", "validate", "--config", str(broken)],
                                  cwd=REPO, capture_output=True, text=True, timeout=60)
        assert validate.returncode == 2 and "Mars/Olympus_Mons" in validate.stderr
        problems = validate.stderr.splitlines()

        with open(good / "groups" / "k-club.toml", "a") as f:
            f.write('\n[[members]]\nname = "Noor Haddad"\nemail = "noor.haddad@cedar-childrens.example"\n'
                    'institution = "Cedar Children\'s Hospital"\ntimezone = "America/New_York"\n'
                    'hours = "09:00-17:00"\n')

        for service in services.values():
            service.proc.send_signal(signal.SIGUSR1)
        service = services[broken]
        errors = wait_for(lambda: [e for e in service.events() if e["event"].startswith("config not reloaded")],
                          90, "the broken edit to be reported")
        assert [e["level"] for e in errors] == ["error"] * len(errors)
        assert [e["problem"] for e in errors] == problems
        assert service.alive(), service.stderr
        assert not any(e["event"] == "config reloaded" for e in service.events())

        service = services[good]
        wait_for(lambda: any(e["event"] == "sent" and e["to"] == NEW_MEMBER for e in service.events())
                 or not service.alive(), 90, "the new member's invite")
        assert service.alive(), service.stderr
        events = [e["event"] for e in service.events()]
        assert "config reloaded" in events
        # The new member's invite; whatever else the real date makes due (a December tick
        # also sends the year-end prompt) may come with it.
        kinds = [m["X-Friendtor-Kind"] for m in maildir(good) if recipient(m) == NEW_MEMBER]
        assert "invite" in kinds and set(kinds) <= {"invite", "year-end"}, kinds
    finally:
        for service in services.values():
            if service.alive():
                service.proc.send_signal(signal.SIGTERM)
    for service in services.values():
        assert service.wait(timeout=10) == 0, service.stderr
        no_traceback(service.stderr)


def maildir(folder: Path) -> list[EmailMessage]:
    return [parsed(p.read_bytes()) for p in sorted((folder / "var" / "outbox" / "new").iterdir())]


def test_a_dangling_symlink_in_the_config_folder_does_not_stop_run(tmp_path: Path, start: Start) -> None:
    """A file that cannot be stat'ed (a dangling symlink, an editor's vanished temp file) is no reason to stop."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(MAILDIR_SERVICE)
    (folder / "notes.txt").symlink_to(tmp_path / "nowhere")
    run = start(*run_args(folder, "--now", NOW))
    assert run.wait() == 0, run.stderr
    no_traceback(run.stderr)
    assert len(maildir(folder)) == 12


# --- 6. what the logs never contain ------------------------------------------------------------

def test_json_logs_hold_no_goal_body_or_password(tmp_path: Path, submission_smtp: Server, test_ca, start: Start) -> None:
    """With STARTTLS and a login, JSON logs of invite and agenda ticks hold no goal, no body line, no password."""
    folder = copy_example(tmp_path / "config")
    (folder / "service.toml").write_text(smtp_service(submission_smtp, security="starttls", username=USERNAME,
                                                      password_env=ENV_PASSWORD))
    ca = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca))
    # SSL_CERT_FILE makes ssl.create_default_context() in the child trust the test CA, with
    # verification on, exactly as a private CA in the system store would.
    env = {ENV_PASSWORD: PASSWORD, "SSL_CERT_FILE": str(ca)}
    runs = []
    for now in (NOW, "2026-12-09T12:00:00Z"):  # invites, then agendas (which list the goals)
        run = start(*run_args(folder, "--now", now, "--log-format", "json"), env=env)
        assert run.wait() == 0, run.stderr
        runs.append(run)

    messages = [parsed(r.content) for r in submission_smtp.received]
    kinds = {m["X-Friendtor-Kind"] for m in messages}
    assert {"invite", "agenda"} <= kinds, kinds
    goals = [g["text"] for g in tomllib.loads((folder / "groups" / "k-club.toml").read_text())["goals"]]
    bodies = "\n".join(part.get_content() for m in messages for part in m.walk()
                       if part.get_content_type() in ("text/plain", "text/html"))
    assert any(g in bodies for g in goals), "the check below would mean nothing"
    body_lines = {line.strip() for line in bodies.splitlines() if len(line.strip()) >= 12}

    for run in runs:
        logs = run.stderr + run.stdout
        for line in run.stderr.splitlines():
            json.loads(line)  # every log line is one JSON document
        assert any(json.loads(line)["event"] == "sent" for line in run.stderr.splitlines())
        assert PASSWORD not in logs
        assert not [g for g in goals if g in logs]
        assert not [line for line in body_lines if line in logs]
