"""Structured log events: a name and fields, never a message body, a goal or a secret.

Any layer may report an event; where and how it is written (text or JSON, stderr) is set
up once by the service (`scheduler.app.logs`), so nothing here touches a file.
"""

from __future__ import annotations

import logging

log = logging.getLogger("friendtor")


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    log.log(level, name, extra={"fields": fields})
