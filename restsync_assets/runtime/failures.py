"""Turn any failure of a run into the one actionable line the user reads.

restsync's own errors (every `RestsyncError`: retries exhausted, non-JSON answers,
pagination loops, token failures, warehouse problems, ...) already say the source, resource,
URL, status and what to do; `explain` picks the deepest of them in the exception chain. For
a failure that is not restsync's (dlt's, a driver's), it words the ones it knows (a null
primary key, a warehouse that is not configured or cannot be reached, DuckDB out of memory)
and otherwise quotes the deepest error with its type. Every secret given, and every secret
the HTTP layer registered (client secrets, access and refresh tokens), is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from restsync_assets import settings
from restsync_assets.errors import RestsyncError
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
    ours = [e for e in chain if isinstance(e, RestsyncError)]
    chosen = ours[-1] if ours else chain[-1]
    known = None if ours else next((k for e in chain if (k := _known_dlt_error(e))), None)
    if known is None and not ours:
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


# --------------------------------------------------------------------------- the warehouse

#: An example of each destination's credentials, shown when they are missing.
CREDENTIAL_EXAMPLES = {
    "postgres": "postgresql://USER:PASSWORD@HOST:5432/DATABASE (an empty password still needs"
    " the ':', as in postgresql://postgres:@127.0.0.1:5432/restsync)",
}


#: How drivers say that they could not reach or log into the database (psycopg2's and
#: libpq's wording), besides dlt's own `DestinationConnectionError`.
_CANNOT_CONNECT = ("connection to server", "could not connect", "could not translate host")


def _cap_advice() -> str:
    limit = settings.user_duckdb_memory_limit()
    if limit:
        return f"under RESTSYNC_DUCKDB_MEMORY_LIMIT={limit}: raise it or unset it, then run again"
    return (
        f"under restsync's default cap ({settings.default_duckdb_memory_limit()}): set"
        " RESTSYNC_DUCKDB_MEMORY_LIMIT higher (e.g. 1GB), then run again"
    )


def warehouse_problem(error: BaseException) -> str | None:
    """One line for a warehouse that is not configured or cannot be reached, else None."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.destinations.exceptions import DestinationConnectionError

    from restsync_assets.runtime.http.masking import mask_text

    name = settings.destination_name()
    key = f"DESTINATION__{name.upper()}__CREDENTIALS"
    example = CREDENTIAL_EXAMPLES.get(name)
    fix = f"set {key}" + (f" to {example}" if example else "")
    for cause in reversed(causes(error)):  # the deepest cause says it best
        text = str(cause).strip()
        first = text.splitlines()[0] if text else type(cause).__name__
        if isinstance(cause, ConfigFieldMissingException):
            return (
                f"{name} warehouse: credentials missing or incomplete ({', '.join(cause.fields)}):"
                f" {fix} (or [destination.{name}] credentials in .dlt/secrets.toml)"
            )
        if type(cause).__name__ == "ArgumentError" and "URL" in text:
            return f"{name} warehouse: the credentials are not a URL ({first}): {fix}"
        if type(cause).__name__ == "OutOfMemoryException" and name == "duckdb":
            return f"duckdb warehouse: DuckDB ran out of memory loading ({first}) {_cap_advice()}"
        if isinstance(cause, DestinationConnectionError) or any(
            marker in text for marker in _CANNOT_CONNECT
        ):
            if isinstance(cause, DestinationConnectionError):
                inner = str(cause.inner_exc).strip()
                first = inner.splitlines()[0] if inner else first
            return mask_text(f"{name} warehouse: cannot connect ({first}): check {key}", [])
    return None
