"""Sandboxed Jinja2 templates used in source specs (cursor values, stop conditions, ...).

A template that is exactly one ``{{ expression }}`` evaluates to the native Python value of
the expression (a bool, a dict, a str, ...). Any other text is rendered to a string.

Templates run in Jinja2's ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: reading
an undefined variable or a missing key with attribute syntax is an error, so write
``response.get('paging', {}).get('next')`` for optional fields. Every failure (syntax,
undefined value, sandbox violation, exception in the expression) is raised as
:class:`TemplateError` with a one-line message.

Besides ``range`` and ``dict``, templates may call the functions of
:mod:`restsync_assets.specs.template_functions` (``now_utc``, ``format_datetime``,
``duration``, ``regex_search``, ...) and use its filters (``base64encode``, ...).
"""

from __future__ import annotations

import operator
from typing import Any

from jinja2 import StrictUndefined, meta, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from restsync_assets.errors import RestsyncError
from restsync_assets.specs.template_functions import FILTERS, FUNCTIONS
from restsync_assets.text import one_line

__all__ = ["CompiledTemplate", "TemplateError", "compile_template", "is_template"]

_MAX_SEQUENCE_LENGTH = 1_000_000
_MAX_POWER_BITS = 10_000


class TemplateError(RestsyncError, ValueError):
    """A template failed to compile or to evaluate. The message is one line."""

    kind = "config"


def is_template(value: Any) -> bool:
    """Whether a value is a template (a string holding `{{` or `{%`), else a literal: how
    `add_fields` tells the two apart, at validation and at run time."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _error(source: str, what: str, cause: BaseException) -> TemplateError:
    reason = one_line(str(cause)) or type(cause).__name__
    return TemplateError(f"template {one_line(source)!r}: {what}: {type(cause).__name__}: {reason}")


class _Environment(ImmutableSandboxedEnvironment):
    """Immutable sandbox that also bounds ``**`` and sequence repetition (CPU/memory DoS)."""

    intercepted_binops = frozenset(["**", "*"])

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and left.bit_length() * abs(right) > _MAX_POWER_BITS:
                raise SecurityError("power result is too large")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                repeat = isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                if repeat and len(seq) * count > _MAX_SEQUENCE_LENGTH:
                    raise SecurityError("sequence repetition result is too long")
            return operator.mul(left, right)
        return super().call_binop(context, operator_, left, right)


def _make_environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False)
    # only keep side-effect free helpers in the global namespace
    env.globals = {"range": env.globals["range"], "dict": dict, **FUNCTIONS}
    env.filters.update(FILTERS)
    return env


_ENV = _make_environment()


def _single_expression_source(text: str) -> str | None:
    """Return the inner expression when ``text`` is exactly one ``{{ ... }}`` block."""
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    body = _ENV.parse(text).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    inner = text[2:-2]
    # whitespace control markers: {{- expr -}} / {{+ expr +}}
    if inner[:1] in "-+":
        inner = inner[1:]
    if inner[-1:] in "-+":
        inner = inner[:-1]
    return inner


class CompiledTemplate:
    """A compiled template. Immutable and thread-safe; ``deepcopy`` returns the same object."""

    def __init__(self, source: str) -> None:
        self.source = source
        text = source.strip()
        try:
            expression = _single_expression_source(text)
            if expression is not None:
                self._expression = _ENV.compile_expression(expression, undefined_to_none=False)
                self._template = None
            else:
                self._expression = None
                self._template = _ENV.from_string(source)
        except JinjaTemplateError as exc:
            raise _error(source, "syntax error", exc) from None

    @property
    def is_expression(self) -> bool:
        """True when the template is a single ``{{ expr }}`` returning a native value."""
        return self._expression is not None

    @property
    def variables(self) -> frozenset[str]:
        """The names the template reads from its context (globals such as ``range`` left out)."""
        found = meta.find_undeclared_variables(_ENV.parse(self.source))
        return frozenset(found - set(_ENV.globals))

    def evaluate(self, **context: Any) -> Any:
        """Evaluate with ``context`` as variables; native value or rendered string."""
        try:
            if self._expression is None:
                return self._template.render(**context)
            value = self._expression(**context)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value
        except Exception as exc:
            raise _error(self.source, "evaluation failed", exc) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledTemplate:
        return self

    def __copy__(self) -> CompiledTemplate:
        return self

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.source!r})"


def compile_template(text: str) -> CompiledTemplate:
    """Compile ``text``; raises :class:`TemplateError` on syntax errors (at spec load time)."""
    if isinstance(text, CompiledTemplate):
        return text
    if not isinstance(text, str):
        raise TemplateError(f"template {text!r}: expected a string, got {type(text).__name__}")
    return CompiledTemplate(text)
