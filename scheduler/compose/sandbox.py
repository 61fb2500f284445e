"""The sandbox coordinators' templates run in, with a budget: time and size.

Jinja's `SandboxedEnvironment` keeps a template away from Python internals and caps
`range()`, but `{{ 9 ** 9999999 }}`, `{{ "x" * 10**9 }}`, two nested loops over
`range(100000)` or a macro that doubles a text at each call would still hang a tick or
exhaust memory. Checked here, while rendering, at the points a template cannot avoid:

- operators (`**`, `*`, `+`, `%`): their operands' sizes before Python computes them, since
  `9 ** 9999999` is one C-level operation that no clock check could interrupt;
- every call (macros, methods) and every 1024 items of a `range()`: the wall clock, and the
  size of texts passed to a call;
- filters, `namespace()` attributes and calls: the size of what they build;
- the output (see `scheduler.compose.render`): counted chunk by chunk.

A breach raises `TemplateProblem` without a file, which the renderer completes with the
file and line it happened in. These checks cost a few function calls per operator, call
and filter (none for plain output), which is what keeps rendering the bundled templates as
fast as without them. They bound what a template can do with any data; `validate` also
renders each override in a worker process with a time and memory limit
(`scheduler.app.templates`), which catches whatever slips past them.

Pure: the clock comes in with the `Budget` (None: no time limit).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.utils import Namespace

from scheduler.core.errors import TemplateProblem

_SPEC = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?")  # a %-format's width and precision


@dataclass(frozen=True)
class Budget:
    """What rendering one template file may cost: `seconds` of wall clock (measured with
    `clock`, monotonic seconds; None: not measured) and `chars` of output, which also bounds
    any text, list or number (in digits) a template builds on the way."""

    seconds: float = 2.0
    chars: int = 1_000_000
    clock: Callable[[], float] | None = None

    def too_slow(self) -> TemplateProblem:
        return TemplateProblem("", None, f"took longer than {self.seconds:g} s to render "
                               "(limit [limits] template_seconds)")

    def too_large(self, what: str = "produced") -> TemplateProblem:
        return TemplateProblem("", None, f"{what} more than {self.chars} characters "
                               "(limit [limits] template_chars)")


class BudgetedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, budget: Budget, **options: Any):
        super().__init__(**options)
        self.budget = budget
        self.deadline: float | None = None
        chars = budget.chars
        self.globals["range"] = self._range

        class BoundedNamespace(Namespace):
            def __setitem__(self, name: str, value: Any) -> None:
                if _size(value) > chars:
                    raise budget.too_large("builds a value of")
                super().__setitem__(name, value)

        self.globals["namespace"] = BoundedNamespace
        self.filters = {name: _bounded(f, budget) for name, f in self.filters.items()}

    # --- time -----------------------------------------------------------------------------

    def start(self) -> None:
        """A template file starts rendering: its seconds start now."""
        clock = self.budget.clock
        self.deadline = None if clock is None else clock() + self.budget.seconds

    def check_time(self) -> None:
        if self.deadline is not None and self.budget.clock() > self.deadline:  # type: ignore[misc]
            raise self.budget.too_slow()

    def _range(self, *args: int) -> _Range:
        return _Range(self, range(*args))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.check_time()
        chars = __self.budget.chars
        for a in args:
            if isinstance(a, str) and len(a) > chars:
                raise __self.budget.too_large("passes a text of")
        out = super().call(__context, __obj, *args, **kwargs)
        if isinstance(out, str) and len(out) > chars:
            raise __self.budget.too_large("builds a text of")
        return out

    # --- size -----------------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        # Before computing: the result's size from the operands' (bits for numbers; a digit
        # is 3.3 bits, so 4 bits a character errs on the generous side).
        chars, bits = self.budget.chars, self.budget.chars * 4
        if operator == "**":
            if _int(left) and _int(right) and right > 1 and abs(left) > 1 and left.bit_length() * right > bits:
                raise self.budget.too_large("computes a number of")
        elif operator == "*":
            if _int(left) and _int(right):
                if left.bit_length() + right.bit_length() > bits:
                    raise self.budget.too_large("computes a number of")
            elif (_int(right) and _size(left) * right > chars) or (_int(left) and _size(right) * left > chars):
                raise self.budget.too_large("builds a value of")
        elif operator == "+":
            if _size(left) + _size(right) > chars:
                raise self.budget.too_large("builds a value of")
        elif operator == "%" and isinstance(left, str):
            # "%1000000000d" % 1 or "%*d" % (10**9, 1): widths and precisions as large as the output.
            values = right if isinstance(right, tuple) else (right,)
            sizes = [int(n) for spec in _SPEC.findall(left) for n in spec if n]
            if any(n > chars for n in sizes) or any(_int(v) and v > chars for v in values):
                raise self.budget.too_large("formats a text of")
        return super().call_binop(context, operator, left, right)


class _Range:
    """`range()` in a template: at most MAX_RANGE items (as the sandbox's), and the clock
    checked every 1024 items, so nested loops over it stop at the deadline."""

    __slots__ = ("env", "items")

    def __init__(self, env: BudgetedEnvironment, items: range):
        if len(items) > MAX_RANGE:
            raise TemplateProblem("", None, f"range() of more than {MAX_RANGE} numbers is not allowed in templates")
        self.env, self.items = env, items

    def __iter__(self):  # type: ignore[no-untyped-def]
        check = self.env.check_time
        for i, n in enumerate(self.items):
            if not i & 1023:
                check()
            yield n

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]

    def __reversed__(self):  # type: ignore[no-untyped-def]
        return _Range(self.env, self.items[::-1]).__iter__()

    def __contains__(self, n: Any) -> bool:
        return n in self.items

    def __repr__(self) -> str:
        return repr(self.items)


def _bounded(f: Callable[..., Any], budget: Budget) -> Callable[..., Any]:
    """A filter that refuses a number argument larger than the output may be (`center(10**9)`)
    and a result larger than it (`replace` chained into a gigabyte)."""
    chars = budget.chars
    # The value filtered is not checked (a large number may be shown), only what the filter is
    # asked to do with it; a filter marked pass_context/environment/eval_context gets it second.
    first = 2 if getattr(f, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(f)  # keeps Jinja's pass_context / pass_environment marks
    def run(*args: Any, **kwargs: Any) -> Any:
        for a in args[first:]:
            if _int(a) and a > chars:
                raise budget.too_large("asks a filter for")
        for a in kwargs.values():
            if _int(a) and a > chars:
                raise budget.too_large("asks a filter for")
        out = f(*args, **kwargs)
        if isinstance(out, (str, list)) and len(out) > chars:
            raise budget.too_large("builds a value of")
        return out
    return run


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _size(v: Any) -> int:
    return len(v) if isinstance(v, (str, list, tuple)) else 0
