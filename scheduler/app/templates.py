"""Reading the email templates from disk: the bundled defaults and a config folder's
`templates/` overrides, handed to the pure renderer (`scheduler.compose.render`) as bytes.

Read once per `Templates`: the service builds a new one when the config folder changes (a
template is part of the config), so what is rendered is what `validate` checked.

Every rendering has a budget (`[limits] template_seconds` and `template_chars`, checked by
the sandbox while it renders). A coordinator's overrides are checked in a worker process
with a time and memory limit too, so that even what the sandbox cannot interrupt (one long
C-level operation) is refused within seconds by `validate` and by a reload, which then keeps
the last good templates.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import scheduler
from scheduler.app.files import atomic_write, read_regular
from scheduler.core.config import Limits
from scheduler.core.errors import Problem, TemplateProblem

if TYPE_CHECKING:  # the renderer (Jinja) is imported only when templates are rendered
    from scheduler.compose.render import TemplateSources, Templates
    from scheduler.compose.sandbox import Budget

# The worker's time to start (a fresh process imports the message pipeline) and the slack
# over template_seconds it gets per file before it is stopped.
WORKER_START_SECONDS = 20.0
WORKER_GRACE_SECONDS = 3.0


def default_templates() -> Path:
    """The bundled templates: inside the package when installed, else the repo's templates/."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


def _read_folder(folder: Path) -> dict[str, bytes]:
    # Every file below the folder, as a Jinja file loader would find it: "sub/x.html" too.
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            try:
                files[name] = path.read_bytes()
            except OSError as exc:
                # Said as a render error of that file was said when templates were read lazily.
                raise TemplateProblem(f"templates/{name}", None, f"{type(exc).__name__}: {exc}") from None
    return files


def load_templates(override: Path | None, limits: Limits | None = None) -> Templates:
    """The templates with a config folder's `templates/` (if it exists) over the bundled ones,
    each rendering within `limits` (the defaults without)."""
    from scheduler.compose.render import TemplateSources, Templates

    folder = override if override is not None and override.is_dir() else None
    sources = TemplateSources(
        override=_read_folder(folder) if folder else {},
        bundled=_bundled(_fingerprint(default_templates())),
        override_files=frozenset(p.name for p in folder.iterdir() if p.is_file()) if folder else frozenset(),
    )
    return Templates(sources, budget(limits or Limits()))


def budget(limits: Limits) -> Budget:
    from scheduler.compose.sandbox import Budget

    return Budget(limits.template_seconds, limits.template_chars, time.monotonic)


@lru_cache(maxsize=4)
def _bundled(_state: tuple) -> dict[str, bytes]:
    # The bundled files do not change while friendtor runs, except in a developer's checkout:
    # read again when their names, sizes or times change.
    return _read_folder(default_templates())


def _fingerprint(folder: Path) -> tuple:
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


# In the state folder: the content hash of the last template set found without a problem.
CHECKED_FILE = ".templates-checked.json"


def check_templates(folder: Path, limits: Limits | None = None,
                    state_folder: Path | None = None) -> list[Problem]:
    """Render every kind with sample data (emails shared and not); one Problem per broken
    template in the config folder's `templates/` (or in the bundled ones), and per template
    over its budget. With `state_folder`, a set already found clean (same bytes, same limits,
    same friendtor) is not rendered again."""
    override = folder / "templates"
    # Rendering 18 emails costs a tenth of a second; the service reloads config often, so the
    # answer is kept until a template file changes.
    override = override if override.is_dir() else None
    limits = limits or Limits()
    key = _content_key(override, limits) if state_folder is not None else None
    if key is not None and _checked(state_folder, key):
        return []
    state = _fingerprint(override) if override else ()
    problems = list(_check(override, state, _fingerprint(default_templates()), limits))
    if key is not None and not problems:
        _remember(state_folder, key)
    return problems


def _content_key(override: Path | None, limits: Limits) -> str | None:
    # Only a clean answer is kept, so a broken template is always rendered and reported anew;
    # the key holds every byte that answer depends on, and the version (the samples and the
    # renderer change with friendtor). None (no caching) when a file cannot be read.
    digest = hashlib.sha256(f"friendtor {scheduler.__version__}\n{limits!r}\n".encode())
    try:
        sets = (_read_folder(override) if override else {}, _read_folder(default_templates()))
    except TemplateProblem:
        return None
    for files in sets:
        digest.update(f"{len(files)}\n".encode())
        for name, data in files.items():
            digest.update(f"{name}\n{len(data)}\n".encode() + data)
    return digest.hexdigest()


def _checked(state_folder: Path, key: str) -> bool:
    # A missing, unreadable, corrupt or foreign file is no answer: the templates are checked.
    try:
        raw = read_regular(state_folder / CHECKED_FILE)
        record = json.loads(raw) if raw is not None and len(raw) < 4096 else None
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("clean") == key


def _remember(state_folder: Path, key: str) -> None:
    # Only into a state folder that exists (see keep_clean_check for the one command that
    # creates it); a failure to write costs the next command a check, nothing more.
    try:
        if state_folder.is_dir():
            atomic_write(state_folder / CHECKED_FILE, json.dumps({"clean": key}).encode())
    except (OSError, ValueError):  # ValueError: a NUL in the name (the state's own check says so)
        pass


def keep_clean_check(folder: Path, limits: Limits, state_folder: Path) -> None:
    """After the config folder `folder` loaded without a problem (so its templates are clean),
    keep that answer in `state_folder`, creating the folder first if it does not exist yet.

    `validate` calls this: it is the first command of a new installation, and without it
    every command before the first `run` (which creates the state folder) rendered the samples
    again. The folder is made as `run` makes it (0700), and only below a folder that belongs
    to the user running the command: an operator validating as root must not leave a root-owned
    state folder that the service's own user then cannot write into."""
    override = folder / "templates"
    key = _content_key(override if override.is_dir() else None, limits)
    if key is None or _checked(state_folder, key):
        return
    if _create_own(state_folder):
        _remember(state_folder, key)


def _create_own(folder: Path) -> bool:
    """Whether `folder` exists, once created (0700) if the nearest existing folder above it is this user's."""
    above = folder
    try:
        if folder.is_dir():
            return True
        while not above.exists():
            if above.parent == above:
                return False
            above = above.parent
        if not above.is_dir() or above.stat().st_uid != os.geteuid():
            return False
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (OSError, ValueError):  # a name too long or with a NUL, a read-only disk, a race
        return False
    return True


@lru_cache(maxsize=32)
def _check(override: Path | None, _override_state: tuple, _bundled_state: tuple,
           limits: Limits) -> tuple[Problem, ...]:
    try:
        templates = load_templates(override, limits)
    except TemplateProblem as exc:
        return (exc.problem(),)
    if override is None:
        return tuple(_problems(templates))  # friendtor's own templates: no worker needed
    return _check_in_worker(templates, limits)


def _problems(templates: Templates) -> list[Problem]:
    # The sample data builds every kind of message: imported here, so that loading a config
    # does not load the whole message pipeline until templates are checked.
    from scheduler.compose.samples import template_problems

    return template_problems(templates)


def _check_in_worker(templates: Templates, limits: Limits) -> tuple[Problem, ...]:
    """`template_problems` in a worker process, stopped when one file renders for longer than
    template_seconds (plus slack) or the worker dies (out of memory): then the file it was
    rendering is the problem. The worker is forked from a clean server process (forkserver),
    never from the service, whose threads may hold locks."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ours, theirs = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(templates.sources, limits, theirs), daemon=True)
    worker.start()
    theirs.close()
    current: str | None = None
    wait = WORKER_START_SECONDS + limits.template_seconds
    try:
        while True:
            if not ours.poll(wait):
                return (_stopped(templates, current, f"took longer than {limits.template_seconds:g} s to render "
                                 "(limit [limits] template_seconds)"),)
            try:
                kind, value = ours.recv()
            except (EOFError, OSError):
                return (_stopped(templates, current, f"stopped the check: it may need more than "
                                 f"{limits.template_memory_mb} MB (limit [limits] template_memory_mb)"),)
            if kind == "done":
                return tuple(Problem(*p) for p in value)
            current, wait = value, limits.template_seconds + WORKER_GRACE_SECONDS
    finally:
        ours.close()
        if worker.is_alive():
            worker.kill()
        worker.join(5)


def _stopped(templates: Templates, name: str | None, message: str) -> Problem:
    return Problem(templates.source_of(name) if name else "templates/", "", message)


def _worker(sources: TemplateSources, limits: Limits, conn: Any) -> None:
    """In the worker: memory capped at what it has plus template_memory_mb (a template that
    builds too much gets MemoryError, said as a problem of its file), then the check."""
    import resource

    from scheduler.compose.render import Templates

    try:
        with open("/proc/self/statm") as statm:
            have = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        have = 0
    if have:
        cap = have + limits.template_memory_mb * 1024 * 1024
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        templates = Templates(sources, budget(limits))
        templates.on_render = lambda name: conn.send(("rendering", name))
        problems = [(p.file, p.field, p.message) for p in _problems(templates)]
    except BaseException as exc:  # noqa: BLE001 (said by the parent; a traceback here would reach stderr)
        problems = [("templates/", "", f"could not be checked: internal error ({type(exc).__name__})")]
    try:
        conn.send(("done", problems))
        conn.close()
    except OSError:
        pass  # the parent stopped waiting
