"""Members' replies through a real tick: real-format replies in a Maildir inbox, answering a
message the first tick sent, are taken into the state; everything else is ignored quietly."""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import example_after_first_run

from integrations.inbox import MaildirInbox
from integrations.mail import DryRunTransport
from scheduler.app.secret import load_secret, secret_path
from scheduler.app.store import Store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.cli.main import main
from scheduler.compose.messages import message_id

ROOT = Path(__file__).resolve().parents[2]
REPLIES = ROOT / "tests" / "fixtures" / "replies"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 12, tzinfo=UTC)
MAYA, LI, JAMES = ("maya.chen@northeast-childrens.example", "li.wang@pacific-u.example",
                   "james.carter@northeast-childrens.example")


@pytest.fixture
def cfg(tmp_path, capsys):
    """The example config after a first run (the December invites sent), with an inbox set."""
    folder = example_after_first_run(tmp_path, NOW, inbox=True)
    capsys.readouterr()
    mailbox.Maildir(folder / "var" / "inbox", create=True)
    return folder


def sent_id(folder: Path, to: str) -> str:
    """The Message-ID of a message the first run sent to `to`."""
    for msg in mailbox.Maildir(folder / "var" / "outbox", factory=None, create=False):
        if to in str(msg["To"]):
            return str(msg["Message-ID"])
    raise AssertionError(f"nothing sent to {to}")


def answering(fixture: str, message_id: str, *, sender: str | None = None) -> bytes:
    """A real-format reply, its In-Reply-To and References naming `message_id` (and its From
    changed to `sender`, if given)."""
    data = (REPLIES / fixture).read_bytes()
    head, sep, body = data.partition(b"\n\n") if b"\r\n\r\n" not in data[:4096] else data.partition(b"\r\n\r\n")
    head = re.sub(rb"(?im)^(In-Reply-To|References):.*$", lambda m: m.group(1) + b": " + message_id.encode(), head)
    if sender is not None:
        head = re.sub(rb"(?im)^From:.*$", f"From: Someone <{sender}>".encode(), head, count=1)
    return head + sep + body


def deliver(folder: Path, *messages: bytes) -> None:
    box = mailbox.Maildir(folder / "var" / "inbox", create=True)
    for data in messages:
        box.add(data)


def tick(folder: Path, when: datetime = LATER):
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: DryRunTransport(), availability=lambda *a: {},
                        inbox=MaildirInbox())
        return runner.tick(when)


def items(folder: Path, member: str | None = None) -> list[dict]:
    with Store(folder / "var" / "state.json", lock=False) as s:
        return s.replies.items("k-club", member)


def unread(folder: Path) -> int:
    return sum("S" not in m.get_flags() for m in mailbox.Maildir(folder / "var" / "inbox", create=False))


@pytest.mark.parametrize(("fixture", "member", "kinds"), [
    ("gmail.eml", MAYA, ["goal", "agenda"]),                 # "done: 1" is Maya's one open goal
    ("outlook_desktop.eml", JAMES, ["celebrate", "goal"]),
    ("apple_mail.eml", MAYA, ["celebrate"]),                 # "done: 2": Maya has one open goal
    ("outlook_web.eml", LI, None),
    ("html_only.eml", LI, None),
    ("iphone.eml", JAMES, None),
])
def test_a_members_reply_in_a_real_format_is_taken(cfg, fixture, member, kinds):
    """A reply from the member, answering a message sent to them, adds its items and is marked seen."""
    deliver(cfg, answering(fixture, sent_id(cfg, member)))
    tick(cfg)
    got = [d["kind"] for d in items(cfg, member)]
    assert got and all(d["member"] == member for d in items(cfg))
    if kinds is not None:
        assert [k for k in got if k != "done"] == kinds
    assert unread(cfg) == 0


def test_the_gmail_reply_records_goal_due_done_and_agenda_with_their_source(cfg):
    """Gmail: the commitment's due date in Maya's zone, `done: 1` on her config goal, the agenda item on
    December's meeting; each item names the reply it came from."""
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    got = {d["kind"]: d for d in items(cfg, MAYA)}
    assert got["goal"]["text"] == "send specific aims to Rafael" and got["goal"]["due"] == "2027-03-15"
    assert got["done"]["text"] == "Send specific aims page to primary mentor"
    assert got["agenda"]["cycle"] == "2026-12"
    assert {d["reply"] for d in got.values()} == {"<CAH7mR2pQm+9kJ3sV_x1ZfL0aT8=b2yQe4nU@mail.gmail.com>"}


def test_reply_items_reach_the_next_agenda(cfg, capsys):
    """What Maya sent by reply is on December's agenda (to the group's members), and her done goal is done."""
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    assert main(["run", "--config", str(cfg), "--now", "2026-12-08T16:00:00+00:00"]) == 0
    capsys.readouterr()
    agendas = [m for m in (email.message_from_bytes(bytes(raw), policy=email.policy.default)
                           for raw in mailbox.Maildir(cfg / "var" / "outbox", factory=None, create=False))
               if m["X-Friendtor-Kind"] == "agenda" and LI in str(m["To"])]
    assert agendas
    text = agendas[0].get_body(("plain",)).get_content()
    assert "10 minutes on the resubmission timeline" in text
    assert "send specific aims to Rafael" in text


@pytest.mark.parametrize(("sender", "to", "reason"), [
    (LI, MAYA, "sent to another address"),                          # a member answering another's message
    ("mallory@evil.example", MAYA, "sent to another address"),      # a stranger with a valid In-Reply-To
])
def test_a_reply_to_someone_elses_message_is_ignored(cfg, caplog, sender, to, reason):
    """A From that is not the message's recipient (spoofed, a stranger, another member): nothing stored,
    logged with a reason and the domain only, left unread for a person."""
    caplog.set_level(logging.INFO)
    deliver(cfg, answering("gmail.eml", sent_id(cfg, to), sender=sender))
    report = tick(cfg)
    assert items(cfg) == []
    assert unread(cfg) == 1
    [ignored] = [r.fields for r in caplog.records if r.getMessage() == "reply ignored"]
    assert ignored == {"reason": reason, "domain": sender.rpartition("@")[2]}
    logged = repr([(r.getMessage(), getattr(r, "fields", None)) for r in caplog.records])
    assert "resubmission" not in logged and sender not in logged
    assert not any(r.kind == "receipt" for r in report.planned)


def test_a_guessed_message_id_is_not_taken(cfg):
    """A Message-ID made the old way (an unkeyed hash of a guessable key) names nothing friendtor sent."""
    with Store(cfg / "var" / "state.json", lock=False) as s:
        key = next(r.key for r in s.sends() if r.recipient == MAYA)
    guessed = message_id(key, MAYA, "k-club@mentoring.example.org")
    assert guessed != sent_id(cfg, MAYA)
    deliver(cfg, answering("gmail.eml", guessed))
    tick(cfg)
    assert items(cfg) == [] and unread(cfg) == 1


def test_the_same_reply_twice_is_taken_once(cfg):
    """A reply delivered twice (same Message-ID) adds its items once; both copies are marked seen."""
    data = answering("gmail.eml", sent_id(cfg, MAYA))
    deliver(cfg, data, data)
    tick(cfg)
    first = items(cfg)
    deliver(cfg, data)
    tick(cfg, datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert items(cfg) == first and len(first) == 3
    assert unread(cfg) == 0


def test_garbage_and_enormous_messages_cost_only_themselves(cfg):
    """A broken message and a 3 MB one are left unread; a good reply beside them is still taken."""
    good = answering("gmail.eml", sent_id(cfg, MAYA))
    huge = good.replace(b"Thanks Li", b"agenda: x\n" * 300_000 + b"Thanks Li")
    deliver(cfg, (REPLIES / "garbage.eml").read_bytes(), b"\xff\x00" * 1000, huge, good)
    tick(cfg)
    assert len(items(cfg)) == 3
    assert unread(cfg) == 3


def test_a_message_that_is_not_a_reply_is_left_for_a_person(cfg):
    """Mail that names no message (a newsletter, a bounce) stays unread and changes nothing."""
    deliver(cfg, b"From: news@list.example\nSubject: hello\n\nagenda: buy now\n")
    tick(cfg)
    assert items(cfg) == [] and unread(cfg) == 1


def test_the_secret_is_private_and_message_ids_stay_the_same(cfg):
    """The secret is 32 bytes, 0600, made once; a resend of one send keeps its Message-ID, another
    installation's differs."""
    path = secret_path(cfg / "var" / "state.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = load_secret(cfg / "var" / "state.json")
    assert len(secret) == 32 and load_secret(cfg / "var" / "state.json") == secret
    sender = "k-club@mentoring.example.org"
    assert message_id("invite:k-club:2026-12", MAYA, sender, secret) == message_id("invite:k-club:2026-12", MAYA,
                                                                                    sender, secret)
    assert message_id("invite:k-club:2026-12", MAYA, sender, secret) != message_id("invite:k-club:2026-12",
                                                                                    MAYA, sender, b"x" * 32)


def test_a_secret_others_can_read_stops_with_one_line(cfg):
    """A secret readable by others is refused, naming the file and the fix, never its content."""
    from scheduler.core.errors import StateError
    path = secret_path(cfg / "var" / "state.json")
    os.chmod(path, 0o644)
    with pytest.raises(StateError, match="chmod 600"):
        Store(cfg / "var" / "state.json")


def test_old_outbox_message_ids_still_name_their_message(cfg):
    """A Message-ID kept on an outbox record from before the `sent` table was there is still found."""
    with Store(cfg / "var" / "state.json") as s:
        s.db.drop_table("sent")
        s.commit()
    with Store(cfg / "var" / "state.json") as s:
        assert s.replies.sent(sent_id(cfg, MAYA))["recipient"] == MAYA


def receipts(folder: Path) -> list:
    with Store(folder / "var" / "state.json", lock=False) as s:
        return [r for r in s.sends() if r.kind == "receipt"]


def test_a_taken_reply_gets_one_receipt_to_its_author(cfg):
    """One receipt, to Maya only, listing what was recorded; the same reply again plans none."""
    data = answering("gmail.eml", sent_id(cfg, MAYA))
    deliver(cfg, data)
    tick(cfg)
    deliver(cfg, data)
    tick(cfg, datetime(2026, 11, 22, 12, tzinfo=UTC))
    [receipt] = receipts(cfg)
    assert receipt.recipient == MAYA and receipt.status == "sent"
    assert receipt.payload.recorded == ("New goal: send specific aims to Rafael (by Monday 15 March 2027)",
                                        "Done: Send specific aims page to primary mentor",
                                        "On the next agenda: 10 minutes on the resubmission timeline")


def test_a_reply_with_nothing_to_record_gets_no_receipt(cfg):
    """"Thanks, see you!" is conversation: no receipt, left unread for a person."""
    reply = answering("gmail.eml", sent_id(cfg, MAYA))
    reply = re.sub(rb"(?m)^(commit|done|agenda):.*$", b"", reply)
    deliver(cfg, reply)
    tick(cfg)
    assert receipts(cfg) == [] and items(cfg) == [] and unread(cfg) == 1


def test_not_understood_lines_are_quoted_back_to_their_author(cfg):
    """A line that cannot be read is in the receipt (to its author), with why."""
    reply = answering("gmail.eml", sent_id(cfg, MAYA)).replace(b"done: 1", b"away: someday soon")
    deliver(cfg, reply)
    tick(cfg)
    [receipt] = receipts(cfg)
    assert receipt.payload.not_understood[0][0] == "away: someday soon"


def test_undo_in_reply_to_the_receipt_takes_back_what_the_reply_added(cfg):
    """`undo` answering the receipt removes the reply's items; Maya's goal is open again."""
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    [receipt] = receipts(cfg)
    undo = (f"From: Maya Chen <{MAYA}>\nTo: k-club@mentoring.example.org\nSubject: Re: Got it\n"
            f"Message-ID: <undo-1@mail.example>\nIn-Reply-To: {receipt.message_id}\n\nundo\n\n"
            f"> New goal: send specific aims\n").encode()
    deliver(cfg, undo)
    tick(cfg, datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert items(cfg) == []
    undone = [r for r in receipts(cfg) if r.payload.reply == "<undo-1@mail.example>"]
    assert undone[0].payload.recorded == ("Taken back: 3 item(s) from your earlier reply",)


def test_undo_from_another_member_takes_nothing_back(cfg):
    """Li answering Maya's receipt with `undo` is ignored: the receipt was not sent to Li."""
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    [receipt] = receipts(cfg)
    deliver(cfg, (f"From: Li Wang <{LI}>\nMessage-ID: <undo-2@mail.example>\n"
                  f"In-Reply-To: {receipt.message_id}\n\nundo\n").encode())
    tick(cfg, datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert len(items(cfg)) == 3


def test_done_numbers_count_goals_from_replies_and_time_away_reaches_the_slot_finder(cfg):
    """After the Gmail reply Maya's one open goal is the one she committed to by reply: `done: 1` marks
    it; her `away:` joins her time away in the config the planner and slot finder read."""
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    with Store(cfg / "var" / "state.json", lock=False) as s:
        receipt_id = next(r.message_id for r in s.sends() if r.kind == "receipt")
    deliver(cfg, (f"From: Maya Chen <{MAYA}>\nMessage-ID: <two@mail.example>\nIn-Reply-To: {receipt_id}\n\n"
                  f"done: 1\naway: 2027-01-04 to 2027-01-08\n").encode())
    tick(cfg, datetime(2026, 11, 22, 12, tzinfo=UTC))
    with Store(cfg / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(cfg), store, lambda c: DryRunTransport(), availability=lambda *a: {})
        group = runner.config.groups["k-club"]
        mine = [g for g in group.goals if g.member == MAYA]
        assert all(g.done for g in mine) and {g.text for g in mine} >= {"send specific aims to Rafael"}
        assert group.member(MAYA).away[-1].covers(datetime(2027, 1, 6).date())


@pytest.mark.parametrize(("table", "field", "value", "says"), [
    ("items", "kind", "wish", "items record 1 has a kind that is not one of goal, done, agenda"),
    ("items", "due", 15, "items record 1 has 'due' that is not a date"),
    ("items", "received", "yesterday", "items record 1 has 'received' that is not a date and time"),
    ("sent", "recipient", 7, "sent record 1 has 'recipient' as a number, not text"),
])
def test_a_mistyped_reply_record_stops_the_state_with_one_line(cfg, table, field, value, says):
    """Reply tables are checked when the state is read, like the others; the line names the field, not the value."""
    import json

    from scheduler.core.errors import StateError
    deliver(cfg, answering("gmail.eml", sent_id(cfg, MAYA)))
    tick(cfg)
    state = cfg / "var" / "state.json"
    with Store(state) as s:  # rewritten whole: the journal folded in
        s.storage._write_all()
    doc = json.loads(state.read_text())
    doc.pop("checksum", None)
    doc["meta"]["1"]["schema"] = 2
    doc[table]["1"][field] = value
    state.write_text(json.dumps(doc))
    with pytest.raises(StateError, match=says) as caught:
        Store(state, lock=False)
    assert str(value) not in str(caught.value).replace(str(state), "")


def test_done_numbers_are_the_ones_the_member_saw_not_renumbered_by_the_same_reply(cfg):
    """`commit: X by …` then `done: 1` in one reply marks goal 1 of the email, not the new commitment
    (which would sort first); `done: 1` twice in one reply is recorded once."""
    deliver(cfg, (f"From: Maya Chen <{MAYA}>\nMessage-ID: <first@mail.example>\n"
                  f"In-Reply-To: {sent_id(cfg, MAYA)}\n\n"
                  "commit: draft the budget by 2026-11-25\ndone: 1\ndone: 1\n").encode())
    tick(cfg)
    got = items(cfg, MAYA)
    (done,) = [d for d in got if d["kind"] == "done"]
    assert done["text"] == "Send specific aims page to primary mentor"
    assert [d["text"] for d in got if d["kind"] == "goal"] == ["draft the budget"]
