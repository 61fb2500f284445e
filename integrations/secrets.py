"""Passwords come from the environment, named by `password_env` in a config table; never
from a config file."""

from __future__ import annotations

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
