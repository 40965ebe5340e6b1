"""Airbyte's Jinja strings rewritten into restsync's: values baked, variables renamed.

Airbyte interpolates most string fields of a manifest with Jinja over `config`,
`parameters` (already filled in by `manifest`), `stream_partition`/`stream_slice`,
`stream_interval`, `next_page_token`, `record`, `response`, `headers`, `last_record`,
`last_page_size`. restsync has two places for run-time values:

- requests (path, params, JSON body, headers): dlt's `{resources.<parent>.<field>}` and
  `{incremental.start_value}` placeholders (`request_text`);
- paginators and record transforms: Jinja over `response`, `headers`, `last_page`
  (paginators) or `record`, `parent` (transforms) (`jinja_text`).

Non-secret `config` values become literals; a secret one is `{secret: <field>}` where the
whole value is that secret, and drops the stream anywhere else.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restsync_assets.importers.airbyte.config import CONFIG_REF, Config
from restsync_assets.importers.airbyte.errors import Unsupported
from restsync_assets.specs.model import SecretRef
from restsync_assets.specs.templates import TemplateError, compile_template

_BLOCK = re.compile(r"\{\{(.*?)\}\}|\{%.*?%\}", re.S)
_KEY = r"(?:\.(?!get\b)(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\]|\.get\(\s*['\"]([^'\"]+)['\"]\s*\))"
PARTITION_REF = re.compile(
    r"\b(?:stream_partition|stream_slice)"
    r"(?P<up>(?:\.parent_slice|\[\s*['\"]parent_slice['\"]\s*\])*)" + _KEY
)
INTERVAL_REF = re.compile(r"\bstream_interval" + _KEY)
#: paginator variables: Airbyte's name -> restsync's expression
PAGINATOR_NAMES = {
    "last_record": "last_page[-1]",
    "last_records": "last_page",
    "last_page_size": "(last_page | length)",
}
PAGINATOR_VARIABLES = frozenset({"response", "headers", "last_page"})
#: template functions that read the clock: a template calling one is never baked in
_CLOCK = re.compile(r"\b(now_utc|today_utc|day_delta)\s*\(")


@dataclass
class Scope:
    """What run-time values a stream offers its templates."""

    config: Config
    #: partition field -> (parent resource, parent field), one mapping per level up
    partitions: list[dict[str, tuple[str, str]]] = field(default_factory=list)
    #: the name of the datetime cursor's slice start (`partition_field_start`)
    interval_start: str = "start_time"
    incremental: bool = False
    #: the manifest's folder (schema files are read relative to it)
    manifest_dir: Path | None = None
    #: the `for_each` field of a ListPartitionRouter (its value: `{field}` in requests)
    listed: str | None = None


def _key(match: re.Match[str]) -> str:
    return next(g for g in match.groups()[-3:] if g)


def bake(expression: str, scope: Scope) -> str:
    """`expression` with every non-secret config reference replaced by its literal."""

    def literal(match: re.Match[str]) -> str:
        if scope.config.is_secret(match):
            raise Unsupported(
                f"secret config field {match.group(0)!r} inside a template; restsync reads a"
                " secret only as a whole value ({secret: ...})"
            )
        return repr(scope.config.value(match))

    return CONFIG_REF.sub(literal, expression)


def _literal(expression: str) -> tuple[bool, Any]:
    """`(True, value)` when `expression` (config already baked in) needs no run-time value:
    a literal, or an expression over literals evaluated in restsync's Jinja sandbox."""
    try:
        return True, ast.literal_eval(expression.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    if _CLOCK.search(expression):
        return False, None  # the run's time, not the import's
    try:
        template = compile_template("{{ " + expression.strip() + " }}")
        if template.variables:
            return False, None
        return True, template.evaluate()
    except TemplateError:
        return False, None


def whole_secret(text: str, scope: Scope) -> SecretRef | None:
    """`{secret: field}` when `text` is exactly `{{ config[<secret field>] }}`."""
    match = re.fullmatch(r"\s*\{\{\s*(.*?)\s*\}\}\s*", text, re.S)
    if not match:
        return None
    ref = CONFIG_REF.fullmatch(match.group(1))
    if ref and scope.config.is_secret(ref):
        return scope.config.secret(ref)
    return None


def static(value: Any, scope: Scope, what: str) -> Any:
    """A value fixed at import time (config baked in); a run-time template drops the stream."""
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = re.fullmatch(r"\s*\{\{(.*?)\}\}\s*", value, re.S)
    if whole and not _BLOCK.search(value[value.index("}}") + 2 :]):
        ok, literal = _literal(bake(whole.group(1), scope))
        if ok:
            return literal
    out = []
    last = 0
    for match in _BLOCK.finditer(value):
        out.append(value[last : match.start()])
        last = match.end()
        ok, literal = _literal(bake(match.group(1) or "", scope)) if match.group(1) else (False, 0)
        if not ok:
            raise Unsupported(f"{what}: template {value!r} needs values restsync cannot bake in")
        out.append(str(literal))
    out.append(value[last:])
    return "".join(out)


def request_value(value: Any, scope: Scope, what: str) -> Any:
    """A param, header or body value: a literal, `{secret: ...}`, or a dlt format string."""
    if isinstance(value, dict):
        return {k: request_value(v, scope, f"{what}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [request_value(v, scope, what) for v in value]
    if not isinstance(value, str):
        return value
    secret = whole_secret(value, scope)
    if secret is not None:
        return secret.model_dump()
    return request_text(value, scope, what)


def request_text(text: str, scope: Scope, what: str) -> Any:
    """A path or param as dlt formats it: literal braces doubled, run-time values as
    `{resources.<parent>.<field>}` / `{incremental.start_value}` placeholders."""
    if "{" not in text and "}" not in text:
        return text
    whole = re.fullmatch(r"\s*\{\{(.*?)\}\}\s*", text, re.S)
    if whole and "{{" not in text[2:-2]:
        found = _placeholder(whole.group(1), scope, what)
        if found is not None:
            kind, value = found
            return _escape(value) if kind == "literal" and isinstance(value, str) else value
    out, last = [], 0
    for match in _BLOCK.finditer(text):
        out.append(_escape(text[last : match.start()]))
        last = match.end()
        if match.group(1) is None:
            raise Unsupported(f"{what}: Jinja statements ({match.group(0)!r}) in a request")
        found = _placeholder(match.group(1), scope, what)
        if found is None:
            raise Unsupported(
                f"{what}: template {text!r} needs run-time values restsync cannot send"
            )
        kind, value = found
        out.append(value if kind == "placeholder" else _escape(str(value)))
    out.append(_escape(text[last:]))
    return "".join(out)


def _placeholder(expression: str, scope: Scope, what: str) -> tuple[str, Any] | None:
    """One `{{ expression }}` of a request: `("placeholder", "{...}")` for dlt to fill,
    `("literal", value)` baked in, or None."""
    expression = expression.strip()
    partition = PARTITION_REF.fullmatch(expression)
    if partition:
        level = partition.group("up").count("parent_slice")
        name = _key(partition)
        if name == scope.interval_start and scope.incremental:
            return "placeholder", "{incremental.start_value}"
        if level == 0 and name == scope.listed:
            return "placeholder", "{" + name + "}"
        if level < len(scope.partitions) and name in scope.partitions[level]:
            resource, key = scope.partitions[level][name]
            return "placeholder", f"{{resources.{resource}.{key}}}"
        raise Unsupported(f"{what}: {expression!r} names no partition field of the stream")
    interval = INTERVAL_REF.fullmatch(expression)
    if interval and _key(interval) == scope.interval_start and scope.incremental:
        return "placeholder", "{incremental.start_value}"
    if interval:
        raise Unsupported(
            f"{what}: {expression!r}: restsync sends only the incremental start value"
        )
    if "next_page_token" in expression:
        raise Unsupported(
            f"{what}: {expression!r}: the page token goes where the paginator puts it"
        )
    ok, literal = _literal(bake(expression, scope))
    return ("literal", literal) if ok else None


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def jinja_text(text: str, scope: Scope, what: str, allowed: frozenset[str], kind: str) -> str:
    """A paginator or record template in restsync's Jinja: config baked, variables renamed."""
    if not isinstance(text, str):
        return text

    def rewrite(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner is None:
            return _rename(match.group(0), scope, what, kind)
        return "{{ " + _rename(bake(inner, scope), scope, what, kind).strip() + " }}"

    rewritten = _BLOCK.sub(rewrite, text)
    try:
        variables = compile_template(rewritten).variables
    except TemplateError as error:
        raise Unsupported(f"{what}: {error}") from None
    unknown = sorted(variables - allowed)
    if unknown:
        raise Unsupported(
            f"{what}: template {text!r} uses {', '.join(unknown)}, which restsync's {kind} templates do not offer"
        )
    return rewritten


def _rename(expression: str, scope: Scope, what: str, kind: str) -> str:
    if kind == "paginator":
        for name, replacement in PAGINATOR_NAMES.items():
            expression = re.sub(rf"\b{name}\b", replacement, expression)
        return expression

    def parent_field(match: re.Match[str]) -> str:
        level, name = match.group("up").count("parent_slice"), _key(match)
        if level == 0 and name == scope.listed:
            return f"record[{name!r}]"
        if level == 0 and scope.partitions and name in scope.partitions[0]:
            return f"parent[{scope.partitions[0][name][1]!r}]"
        if level == 1 and len(scope.partitions) > 1 and name in scope.partitions[1]:
            parent = next(iter(scope.partitions[0].values()))[0]
            resource, key = scope.partitions[1][name]
            if resource == parent:  # a listed parent's value: a field of the parent row
                return f"parent[{key!r}]"
        raise Unsupported(f"{what}: {match.group(0)!r}: a record template sees only its parent row")

    return PARTITION_REF.sub(parent_field, expression)
