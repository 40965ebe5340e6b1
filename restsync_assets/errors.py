"""The base of every restsync exception: `RestsyncError`, with the `kind` of problem it is.

Shared by both halves (spec validation at definition time, HTTP and warehouse errors at run
time, the command line): imports nothing but the standard library, so importing it pulls in
neither Dagster nor dlt. Whether an error is restsync's own (its message is already the one
line a user reads) is `isinstance(error, RestsyncError)` (`runtime.failures.explain`), never
the module it was raised in.

A restsync exception class derives from `RestsyncError` and keeps the built-in base it had
(`ValueError`, `RuntimeError`, `requests.HTTPError`, ...), so every `except` that caught it
still does.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

#: What a problem is about, i.e. where the user looks to fix it:
#: `config` the spec, a setting or a command's arguments; `auth` credentials and tokens;
#: `api` what the API answered (or did not); `warehouse` the destination and its locks;
#: `data` the rows themselves (a bad cursor, a template failing on a row).
ErrorKind = Literal["config", "auth", "api", "warehouse", "data"]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class RestsyncError(Exception):
    """An error restsync raised on purpose; its message is one line meant for the user."""

    #: what the problem is about (see `ErrorKind`); each subclass sets its own
    kind: ClassVar[ErrorKind] = "data"
