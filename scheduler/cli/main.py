"""The `friendtor` command: the one exit path.

Every error a user can cause is a FriendtorError: printed as one line per problem on
stderr, exit status 2, no traceback. Anything else is a bug: one line, exit 70, and the
traceback only with --debug.

The commands live in modules named for their jobs (reports, run, meetings, signin, goals);
the gateways they need are built in `wiring`, the one CLI module that imports `integrations`.
Only the module of the command being run is imported (issue 13): `validate` should not pay
for the Google client, the renderer or the state store it never touches, and neither should
`--help`. tests/cli/test_startup_imports.py pins what each command leaves unimported.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from scheduler.cli.parser import build_parser
from scheduler.core.errors import FriendtorError

log = logging.getLogger("friendtor")

# command -> (module in scheduler.cli, function): imported when that command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("reports", "cmd_validate"), "slots": ("reports", "cmd_slots"),
    "preview": ("reports", "cmd_preview"), "status": ("reports", "cmd_status"),
    "run": ("run", "cmd_run"), "simulate": ("run", "cmd_simulate"),
    "attendance": ("meetings", "cmd_attendance"), "reschedule": ("meetings", "cmd_change_meeting"),
    "cancel": ("meetings", "cmd_change_meeting"), "google-auth": ("signin", "cmd_google_auth"),
    "goals": ("goals", "cmd_goals"),
    "match": ("match", "cmd_match"), "state": ("statecmd", "cmd_state"),
}


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs command `name`, its module imported now."""
    module, function = COMMANDS[name]
    return getattr(importlib.import_module(f"scheduler.cli.{module}"), function)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # a C locale must not turn "–" into a traceback
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return command(args.command)(args)
    except FriendtorError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback is for --debug
        log.debug("internal error", exc_info=True)
        print(f"friendtor: internal error ({type(exc).__name__}: {exc}); run again with --debug "
              "and report the output", file=sys.stderr)
        return 70
