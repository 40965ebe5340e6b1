"""`error_handler.response_rules` at run time: which rule a response's content matches.

The session asks :meth:`ResponseRules.match` about every answer of a resource with rules
(after the 401 handling, before retries are decided): a matched rule is attached to the
response (:data:`MATCHED`), where the retry decision (`retry.retrying`), the failure messages
(`errors.describe`) and the session's `fail` and `ignore` handling read it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from restsync_assets.specs.model import ResponseRule
from restsync_assets.specs.selectors import compile_jsonpath
from restsync_assets.specs.templates import CompiledTemplate, compile_template
from restsync_assets.text import one_line

__all__ = ["MATCHED", "Matched", "ResponseRules", "matched_rule"]

#: the attribute of a `requests.Response` that holds its :class:`Matched` rule
MATCHED = "restsync_matched_rule"
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Matched:
    """The rule a response matched: its index in `response_rules`, action and the API's message."""

    index: int
    action: str
    message: str

    def describe(self) -> str:
        said = f": {self.message}" if self.message else ""
        return f"matching error_handler.response_rules[{self.index}] (action {self.action}){said}"


def matched_rule(response: Any) -> Matched | None:
    """The rule `response` matched, if the session found one."""
    return getattr(response, MATCHED, None)


def _same(value: Any, expected: Any) -> bool:
    """Equal, and a bool only equals a bool (`false` is not `0`)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    return value == expected


class _Compiled:
    def __init__(self, index: int, rule: ResponseRule) -> None:
        self.index = index
        self.rule = rule
        self.path = compile_jsonpath(rule.path) if rule.path else None
        self.when: CompiledTemplate | None = compile_template(rule.when) if rule.when else None
        self.message = compile_jsonpath(rule.message_path) if rule.message_path else None

    def applies_to(self, status: int) -> bool:
        codes = self.rule.status_codes
        return status in codes if codes is not None else 200 <= status < 300

    def holds(self, body: Any, headers: Any) -> bool:
        if self.when is not None:
            return bool(self.when.evaluate(response=body, headers=headers))
        values = [m.value for m in self.path.find(body)]
        if self.rule.has_equals:
            return any(_same(v, self.rule.equals) for v in values)
        return any(v not in (None, False, "", [], {}) for v in values)

    def message_of(self, body: Any) -> str:
        if self.message is None:
            return ""
        found = [m.value for m in self.message.find(body)]
        return "" if not found else str(found[0])


class ResponseRules:
    """A resource's `response_rules`, compiled once per run."""

    def __init__(self, rules: Sequence[ResponseRule]) -> None:
        self._rules = [_Compiled(i, rule) for i, rule in enumerate(rules)]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(
        self, response: requests.Response, body: Callable[[], Any], mask: Callable[[str], str]
    ) -> Matched | None:
        """The first rule `response` matches (attached to it), else None. `body()` gives the
        parsed body (only called for a status some rule applies to); `mask` hides secrets."""
        rules = [r for r in self._rules if r.applies_to(response.status_code)]
        if not rules:
            return None
        parsed = body()
        if parsed is None:  # not JSON (the session reports that itself) or a JSON null
            return None
        for rule in rules:
            if rule.holds(parsed, response.headers):
                message = one_line(mask(rule.message_of(parsed)), _MESSAGE_CHARS)
                found = Matched(rule.index, rule.rule.action, message)
                setattr(response, MATCHED, found)
                return found
        return None
