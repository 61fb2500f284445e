"""Benchmark: 500 messages through friendtor's SMTP transport against raw smtplib.

    python benchmarks/smtp.py              # 500 messages, 5 interleaved rounds
    python benchmarks/smtp.py --quick      # 50 messages, 2 rounds: a smoke test

One aiosmtpd server on loopback (accepts everything, keeps nothing) receives, per round
and in turn (interleaved, so a noisy neighbour costs every variant alike):

- smtplib:     raw `smtplib.SMTP`, one connection, `send_message` for each message: the
               wire-speed reference.
- per message: `SmtpTransport.send` outside a session: one connection per message (what
               friendtor did before delivery batches had a session).
- batch:       `SmtpTransport.send` inside `with transport.session():`, as the delivery loop
               now sends each batch: one connection for all the messages.

The messages are invites as friendtor builds them in size (text and HTML parts, ~2 kB),
one recipient each. Reported: the median messages per second over the rounds and each
variant's ratio to smtplib. It measures and reports; it asserts nothing about time.
"""

from __future__ import annotations

import smtplib
import statistics
import sys
import time
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integrations.mail import SmtpTransport  # noqa: E402
from scheduler.core.config import Smtp  # noqa: E402

SENDER = "friendtor@group.example"


class Sink:
    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


class LoopbackController(Controller):
    def _trigger_server(self) -> None:  # port 0: read the bound port back first
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def messages(n: int) -> list[EmailMessage]:
    out = []
    body = "Agenda for Tuesday: check-in round, then goals. " * 20
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = Address("friendtor", addr_spec=SENDER)
        msg["To"] = Address(f"Member {i}", addr_spec=f"member{i}@uni-a.example")
        msg["Subject"] = "K Club: invitation for 8 December"
        msg["Message-ID"] = f"<invite.{i}@group.example>"
        msg["Date"] = "Sun, 06 Dec 2026 14:00:00 +0000"
        msg.set_content(body)
        msg.add_alternative(f"<p>{body}</p>", subtype="html")
        out.append(msg)
    return out


def raw(host: str, port: int, batch: list[EmailMessage]) -> None:
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        for msg in batch:
            smtp.send_message(msg, SENDER, [msg["To"].addresses[0].addr_spec])


def per_message(settings: Smtp, batch: list[EmailMessage]) -> None:
    transport = SmtpTransport(settings, None)
    for msg in batch:
        transport.send(msg)


def one_session(settings: Smtp, batch: list[EmailMessage]) -> None:
    transport = SmtpTransport(settings, None)
    with transport.session():
        for msg in batch:
            transport.send(msg)


def main() -> None:
    quick = "--quick" in sys.argv
    n, rounds = (50, 2) if quick else (500, 5)
    batch = messages(n)
    controller = LoopbackController(Sink(), hostname="127.0.0.1", port=0, ready_timeout=5)
    controller.start()
    try:
        host, port = "127.0.0.1", controller.port
        settings = Smtp(host=host, port=port, security="none", timeout_seconds=30)
        variants = {"smtplib (1 connection)": lambda: raw(host, port, batch),
                    "friendtor, per message": lambda: per_message(settings, batch),
                    "friendtor, batch session": lambda: one_session(settings, batch)}
        rates: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, run in variants.items():
                started = time.perf_counter()
                run()
                rates[name].append(n / (time.perf_counter() - started))
    finally:
        controller.stop()
    reference = statistics.median(rates["smtplib (1 connection)"])
    print(f"{n} messages, {rounds} interleaved rounds, loopback aiosmtpd; median messages/s")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<26} {rate:8.0f} msg/s   {rate / reference:5.2f}x smtplib")


if __name__ == "__main__":
    main()
