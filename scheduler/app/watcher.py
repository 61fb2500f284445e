"""The config in force while the service runs: reloaded when its files change, kept when an
edit breaks it (the broken edit is logged once, as `friendtor validate` would report it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from scheduler.app.handover import incoming_folder
from scheduler.app.loader import load_config
from scheduler.core.config import Config, is_database
from scheduler.core.errors import FriendtorError
from scheduler.core.log import event


def written_paths(config: Config) -> frozenset[str]:
    """What the service itself writes, wherever the config puts it: not config, so a change
    there must not count as an edit (it would reload the config every tick)."""
    local = config.service.local_folder(config.folder)
    paths = {local / "feeds", config.path(config.service.mail.maildir)}
    if not is_database(config.service.state):
        state = config.path(config.service.state)
        paths |= {state, state.with_name(state.name + ".journal"), state.with_name(state.name + ".lock"),
                  state.with_name(state.name + ".secret"), incoming_folder(state)}
    if config.service.mail.inbox:
        paths.add(config.path(config.service.mail.inbox))
    if config.service.google:
        paths.add(config.path(config.service.google.token))
    return frozenset(os.path.abspath(p) for p in paths)


def fingerprint(folder: Path, skip: frozenset[str] = frozenset()) -> tuple:
    """Names, sizes and times of the config files: not var/, hidden files or `skip` (absolute
    paths of files and folders the service writes)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(root) == folder and d == "var")
                         and os.path.abspath(os.path.join(root, d)) not in skip)
        for name in sorted(files):
            path = os.path.abspath(os.path.join(root, name))
            if not name.startswith(".") and path not in skip:
                # A dangling symlink, or a file an editor removes between the listing and the
                # stat (vim's "4913" probe), must not stop the service: record it without a
                # stamp, so it still counts as a change, and let load_config judge the files.
                try:
                    st = os.stat(path)
                except OSError:
                    out.append((path, None, None))
                    continue
                out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ConfigWatcher:
    """The config in force; reloaded when its files change, kept when the new one is broken."""

    def __init__(self, folder: Path):
        self.folder = folder
        before = fingerprint(folder)  # before loading: an edit made meanwhile shows at the first tick
        self.config = load_config(folder)  # at start a broken config is an error: nothing to fall back on
        skip = written_paths(self.config)
        self.stamp = tuple(entry for entry in before
                           if not any(entry[0] == p or entry[0].startswith(p + os.sep) for p in skip))

    def refresh(self, adopt: Callable[[Config], None] = lambda config: None) -> bool:
        """Reload if a file changed. `adopt` prepares what the new config needs; the new config
        is put in force only if loading and adopting both succeed."""
        stamp = fingerprint(self.folder, written_paths(self.config))
        if stamp == self.stamp:
            return False
        self.stamp = stamp  # a broken edit is reported once, not every tick
        try:
            config = load_config(self.folder)
            adopt(config)
        except FriendtorError as exc:
            for line in exc.lines():
                event("config not reloaded, the last good config stays in force", logging.ERROR, problem=line)
            return False
        self.config = config
        event("config reloaded", groups=len(self.config.groups))
        return True
