"""The command line: every command, its arguments and their help texts (argparse)."""

from __future__ import annotations

import argparse

DEFAULT_CONFIG = "config/example"


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line (the usage is one `--help` away), exit 2,
    as every other error a user can make."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="friendtor", description="Keeps peer mentorship groups meeting.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", default=DEFAULT_CONFIG, metavar="DIR",
                        help=f"config folder (default: {DEFAULT_CONFIG})")

    v = sub.add_parser("validate", help="check every config file")
    config_arg(v)

    s = sub.add_parser("slots", help="rank meeting times for a group and explain them")
    s.add_argument("group", metavar="GROUP", help="the group's id (its file name in groups/)")
    config_arg(s)
    s.add_argument("--from", dest="start", metavar="DATE", help="first date, in the group's zone (YYYY-MM-DD)")
    s.add_argument("--to", dest="end", metavar="DATE", help="last date, inclusive (YYYY-MM-DD)")
    s.add_argument("--top", type=_positive, default=5, metavar="N", help="how many options (default 5)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--heatmap", metavar="FILE", help="also draw who is free when over the window: FILE.svg or FILE.png")

    pv = sub.add_parser("preview", help="show exactly what a member would receive")
    pv.add_argument("group", metavar="GROUP")
    pv.add_argument("kind", metavar="KIND", help="invite, update, cancel, call, agenda, follow-up, "
                    "nudge, review, year-end, alert, report or receipt")
    config_arg(pv)
    pv.add_argument("--to", metavar="EMAIL", help="the member (default: the first member; alerts: a coordinator)")
    pv.add_argument("--now", metavar="ISO8601", help="as if at this instant, e.g. 2026-12-01T09:00:00Z")
    pv.add_argument("--eml", metavar="FILE", help="write the whole RFC 5322 message here")
    pv.add_argument("--html", metavar="FILE", help="write the HTML part here")

    r = sub.add_parser("run", help="run the service: plan, send and record, every tick_minutes")
    config_arg(r)
    r.add_argument("--once", action="store_true", help="run one tick and exit")
    r.add_argument("--now", metavar="ISO8601", help="run one tick as if at this instant (implies --once)")
    r.add_argument("--dry-run", action="store_true", help="print what would be done; change and send nothing")
    r.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines as text or JSON")

    sim = sub.add_parser("simulate", help="run ticks over simulated time into a scratch state and Maildir")
    config_arg(sim)
    sim.add_argument("--from", dest="start", required=True, metavar="DATE")
    sim.add_argument("--to", dest="end", required=True, metavar="DATE")
    sim.add_argument("--step", default="6h", help="time between ticks: 30m, 6h, 1d (default 6h)")
    sim.add_argument("--out", metavar="DIR", help="scratch folder (default: var/simulation in the config folder)")

    at = sub.add_parser("attendance", help="record who came to a meeting")
    at.add_argument("group", metavar="GROUP")
    at.add_argument("date", metavar="DATE", help="the meeting's date in the group's zone (YYYY-MM-DD)")
    config_arg(at)
    at.add_argument("--present", nargs="+", default=[], metavar="EMAIL")
    at.add_argument("--absent", nargs="+", default=[], metavar="EMAIL")

    rs = sub.add_parser("reschedule", help="move a scheduled meeting; members get an update")
    rs.add_argument("group", metavar="GROUP")
    rs.add_argument("--to", required=True, metavar='"YYYY-MM-DD HH:MM"',
                    help="the new start, local time in the group's zone (a gathering's: the conference's)")
    rs.add_argument("--cycle", metavar="KEY",
                    help="which meeting, e.g. 2026-12 or gathering-pas-2027 (default: the next meeting)")
    rs.add_argument("--force", action="store_true",
                    help="move it even when a required member cannot come then, or another group that shares "
                         "members meets then (they are still named)")
    config_arg(rs)

    cn = sub.add_parser("cancel", help="cancel a scheduled meeting; members get a cancellation")
    cn.add_argument("group", metavar="GROUP")
    cn.add_argument("--cycle", metavar="KEY", help="which meeting, e.g. 2026-12 (default: the next one)")
    config_arg(cn)

    gl = sub.add_parser("goals", help="list, mark done, remove or export members' goals and items")
    gl.add_argument("group", metavar="GROUP")
    config_arg(gl)
    gl.add_argument("--member", metavar="EMAIL", help="list only this member's goals and items")
    what = gl.add_mutually_exclusive_group()
    what.add_argument("--done", metavar="ID", help="mark a goal from a reply done (IDs are in the list)")
    what.add_argument("--remove", metavar="ID", help="remove an item that came from a reply")
    what.add_argument("--export", action="store_true", help="print the reply items as TOML for the group file")
    what.add_argument("--json", action="store_true", help="print the list as JSON")

    mt = sub.add_parser("match", help="form groups that can meet from a roster of interested people")
    mt.add_argument("roster", metavar="ROSTER.toml", help="[[people]] with name, email, institution, timezone, hours")
    mt.add_argument("--size", required=True, metavar="MIN-MAX", help="people per group, e.g. 5-8")
    mt.add_argument("--out", required=True, metavar="DIR", help="config folder; the groups go into DIR/groups/")
    mt.add_argument("--month", metavar="YYYY-MM", help="the month meeting times are checked in (default: next month)")
    mt.add_argument("--seed", type=int, default=1, metavar="N", help="seed for the search and the random split (default 1)")
    mt.add_argument("--json", action="store_true", help="print the report as JSON")

    st = sub.add_parser("status", help="upcoming meetings, what was sent, what is pending or failed")
    st.add_argument("group", metavar="GROUP", nargs="?")
    config_arg(st)

    sc = sub.add_parser("state", help="copy the state between TinyDB and PostgreSQL").add_subparsers(
        dest="state_command", required=True, metavar="ACTION")
    cp = sc.add_parser("copy", help="copy every record and the installation secret, then check the counts")
    cp.add_argument("--from", dest="source", required=True, metavar="PATH|URL",
                    help="the state to copy: a TinyDB file or a postgresql:// URI (stop the service first)")
    cp.add_argument("--to", dest="dest", required=True, metavar="PATH|URL",
                    help="where to copy it: a TinyDB file or a postgresql:// URI; must be empty")
    cp.add_argument("--replace", action="store_true", help="overwrite a destination that already holds a state")
    cp.add_argument("--password-env", metavar="NAME",
                    help="the environment variable with the database password (else PGPASSWORD or ~/.pgpass)")

    ga = sub.add_parser("google-auth", help="sign in to Google Calendar once ([google] auth = \"oauth\")")
    config_arg(ga)
    ga.add_argument("--port", type=int, default=0, metavar="PORT",
                    help="local port Google's answer comes back to (default: any free port; "
                         "pick one to forward it with ssh -L PORT:localhost:PORT)")
    ga.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
