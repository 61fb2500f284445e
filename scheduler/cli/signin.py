"""`google-auth`: the operator signs in to Google Calendar once."""

from __future__ import annotations

import argparse

from scheduler.cli import wiring
from scheduler.cli.arguments import load


def cmd_google_auth(args: argparse.Namespace) -> int:
    config = load(args)
    path = wiring.google_sign_in(config, port=args.port, open_browser=not args.no_browser)
    print(f"signed in: the Google refresh token is stored in {path} (mode 0600; keep it private, "
          "like a password)")
    return 0
