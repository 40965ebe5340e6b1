"""Turn an exception raised deep inside dlt or requests into one actionable line.

The line names the source and, when known, the resource; restsync's own errors (retries
exhausted, non-JSON answers, pagination loops, token failures) already say the URL, status
and attempts. Every secret given, and every secret the HTTP layer registered (client
secrets, access and refresh tokens), is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from restsync_assets.text import causes

_NULL_KEY = re.compile(r"Cannot coerce NULL in table `([^`]+)` column `([^`]+)`")
#: dlt's `rest_api` when a parent row lacks the field a child binds (path param or
#: `include_from_parent`)
_UNBOUND = re.compile(
    r"Resource expects a field `([^`]+)` to be present in the incoming data from resource"
    r" `([^`]+)` in order to (?:bind it to path param: `([^`]+)`|include it in child records)"
    r".*Available parent fields are: \[(.*)\]"
)


def _known_dlt_error(error: BaseException) -> str | None:
    """A clearer line for dlt errors that stand for a bad API answer."""
    text = str(error)
    match = _NULL_KEY.search(text)
    if match:
        table, column = match.groups()
        return (
            f"resource {table}: the API returned a row whose `{column}` is null, but"
            f" `{column}` is a primary key (or non-nullable) column, so the row cannot be"
            " merged; nothing from this run was written"
        )
    match = _UNBOUND.search(text)
    if match:
        field, parent, param, fields = match.groups()
        use = f"path param `{param}`" if param else "include_from_parent"
        return (
            f"resource {parent}: a row has no field `{field}`, which its child's {use} takes"
            f" (the row's fields: {fields.replace(chr(39), '')}); fix the binding in the spec, or"
            f" declare `{field}` non-nullable in {parent}'s schema with on_invalid: quarantine"
            " to set such rows aside"
        )
    return None


_CONTEXT = re.compile(r"^CONTEXT:\s*(.+)$", re.M)


def first_line(message: str) -> str:
    """The first line of `message`, with PostgreSQL's `CONTEXT:` line (the table, line and
    column a COPY failed on) when the message has one further down."""
    lines = message.strip().splitlines()
    if not lines:
        return ""
    context = _CONTEXT.search(message)
    if context is None or lines[0].startswith("CONTEXT:"):
        return lines[0]
    return f"{lines[0]} (CONTEXT: {context.group(1).strip()})"


def explain(error: BaseException, source: str, secrets: Iterable[str] = ()) -> str:
    """One line: the most specific error in the chain, with secrets masked (known values,
    secret-looking query parameters such as `?api_key=`, URL passwords)."""
    from restsync_assets.runtime.http.masking import mask_text

    chain = causes(error)
    ours = [e for e in chain if type(e).__module__.startswith("restsync_assets")]
    chosen = ours[-1] if ours else chain[-1]
    known = None if ours else next((k for e in chain if (k := _known_dlt_error(e))), None)
    if known is None and not ours:
        from restsync_assets.runtime.warehouse import explain as warehouse_problem

        known = warehouse_problem(error)
    if known is not None:
        text = known
    else:
        text = first_line(str(chosen)) or type(chosen).__name__
        if not ours:
            text = f"{type(chosen).__name__}: {text}"
    if not text.startswith(source):
        text = f"{source}: {text}"
    return mask_text(text, list(secrets))
