"""Values the warehouse cannot hold, dealt with before dlt sees them.

`BadValues` is a dlt pipe step on every resource, after record transforms (placement affinity
0.5) and before dlt's incremental (1), `Quarantine` (1.2) and `ArrowPages` (1.5), so that the
Arrow fast path and dlt's row path get the same rows:

- `\\u0000` (NUL) in a string, at any depth, is **stripped**: PostgreSQL's text cannot hold it
  (DuckDB's can), and one spec must load the same rows into either. Not in a primary key:
  stripping one could make two rows one, so such a row is a bad row (below).
- A bad row stops the load with one line naming the spec file, the resource, the field and the
  value's type (`on_invalid: fail`), or is set aside in `<table>__rejected` (`quarantine`):
  a primary key missing or null, of a type earlier keys cannot take (`1` then `"id-21"`), or
  holding NUL; a string holding a lone surrogate (`"\\ud800"`, not Unicode text: neither Arrow
  nor the warehouses can encode it).

Under `quarantine` the step judges before dlt's incremental, which cannot judge a row without
its key; the rows it sets aside are handed to the resource's `Quarantine` step (which writes
them with its own) by an empty page sent after them, which dlt's incremental lets through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
from dlt.common.data_types.type_helpers import py_type_to_sc_type
from dlt.extract.items import DataItemWithMeta, TableNameMeta
from dlt.extract.items_transform import ItemTransform

from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.quarantine import (
    VALUE_CHARS,
    Quarantine,
    normalized,
    raw_json,
    type_problem,
)
from restsync_assets.specs.model import ResourceSpec
from restsync_assets.text import short

NUL = "\x00"
#: NUL as JSON writes it
NUL_ESCAPE = b"\\u0000"
BACKSLASH = b"\\"
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadValueError(RestsyncError, ValueError):
    """A row restsync cannot load (`on_invalid: fail`): one line."""

    kind = "data"


@dataclass(frozen=True)
class Problem:
    """Why one row cannot load: its field and a phrase naming the value's type."""

    field: str
    what: str

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.what}"


class BadValues(ItemTransform[Any, Any]):
    """dlt pipe step: strips NUL from strings; bad rows fail the run or go to `quarantine`."""

    #: after record transforms (0.5), before dlt's incremental (1)
    placement_affinity: ClassVar[float] = 0.9

    def __init__(
        self,
        resource: str,
        spec_file: Path | str,
        primary_key: tuple[str, ...] = (),
        declared: dict[str, str] | None = None,
        quarantine: Quarantine | None = None,
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.spec_file = spec_file
        self.primary_key = tuple(primary_key)
        self.quarantine = quarantine
        declared = declared or {}
        #: each key column's type: declared, else the type of the first key this run
        self.key_types: dict[str, str] = {k: declared[k] for k in self.primary_key if k in declared}
        #: each key column's Python type once a key of that type was accepted (the fast path)
        self.key_py_types: dict[str, type] = {}
        #: the field each key column was found under (`createdAt` for `created_at`)
        self.key_fields: dict[str, str] = {}

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if isinstance(meta, TableNameMeta):
            return item  # rows for another table
        rows = item if isinstance(item, list) else [item] if isinstance(item, dict) else None
        if not rows:
            return item
        suspect = page_suspect(rows)
        if not suspect and self._keys_as_before(rows):
            return item  # the common page: no NUL, no surrogate, keys of the known type
        good, bad = [], []
        for row in rows:
            if not isinstance(row, dict):
                good.append(row)
                continue
            problem = self.problem(row, suspect)
            if problem is None:
                good.append(strip_nul(row) if suspect else row)
            elif self.quarantine is None:
                raise BadValueError(self.line(problem, row))
            else:
                bad.append({"raw": raw_json(row), "reason": self.reason(problem, row)})
        if not bad and not suspect:
            return item
        if not bad:
            return good if isinstance(item, list) else good[0]
        return self._set_aside(good, bad, meta)

    def _keys_as_before(self, rows: list) -> bool:
        """Whether every row's keys have the Python types earlier keys had (then, with no NUL
        or surrogate in the page, nothing in it needs a closer look)."""
        for key in self.primary_key:
            expected, name = self.key_py_types.get(key), self.key_fields.get(key)
            if expected is None or name is None:
                return False
            if not all(type(row) is dict and type(row.get(name)) is expected for row in rows):
                return False
        return True

    def _set_aside(self, good: list, bad: list, meta: Any) -> Iterator[Any]:
        self.quarantine.hold(bad)  # type: ignore[union-attr]
        if good:
            yield good if meta is None else DataItemWithMeta(meta, good)
        # dlt's incremental forwards an empty page even when it filtered the rows above: it
        # reaches `Quarantine`, which writes what it holds
        yield []

    def judge(self, row: Any) -> str | None:
        """Why a quarantined resource's run would set `row` aside (None: it would load)."""
        if not isinstance(row, dict):
            return None
        problem = self.problem(row, _suspect(row))
        if problem is not None:
            return self.reason(problem, row)
        found = self.quarantine.problems(row) if self.quarantine is not None else []
        return "; ".join(found) or None

    def reason(self, problem: Problem, row: dict) -> str:
        """The reason a quarantined row is set aside with: every reason `Quarantine` gives
        (its judgement of declared types is the more precise), then this step's own when it
        names another field."""
        found = self.quarantine.problems(row) if self.quarantine is not None else []
        named = {reason.split(":", 1)[0] for reason in found}
        return "; ".join([*found, *([problem.reason] if problem.field not in named else [])])

    def problem(self, row: dict, suspect: bool) -> Problem | None:
        """The first reason `row` cannot load, or None."""
        for key in self.primary_key:
            problem = self._key_problem(key, row)
            if problem is not None:
                return problem
        if suspect:
            found = surrogate_field(row)
            if found is not None:
                field, text = found
                value = short(repr(text), VALUE_CHARS)
                return Problem(field, f"a str holding a lone surrogate ({value}), not Unicode text")
        return None

    def _key_value(self, key: str, row: dict) -> tuple[bool, Any]:
        """Whether `row` has key column `key` and its value: the field of that name, else the
        one dlt names so (`createdAt`), else the nested one dlt flattens so (`data__id`)."""
        if key in row:
            self.key_fields.setdefault(key, key)
            return True, row[key]
        wanted = normalized(key)
        for name, value in row.items():
            if normalized(str(name)) == wanted:
                self.key_fields.setdefault(key, name)
                return True, value
        node: Any = row
        for part in wanted.split("__"):
            if not isinstance(node, dict):
                return False, None
            inner = [v for k, v in node.items() if normalized(str(k)) == part]
            if not inner:
                return False, None
            node = inner[0]
        return True, node

    def _key_problem(self, key: str, row: dict) -> Problem | None:
        present, value = self._key_value(key, row)
        if not present:
            return Problem(key, "missing primary key")
        if value is None:
            return Problem(key, "null primary key")
        kind = type(value).__name__
        if isinstance(value, str) and NUL in value:
            return Problem(key, f"a {kind} primary key holding \\u0000 (NUL)")
        if isinstance(value, str) and _SURROGATE.search(value):
            return Problem(key, f"a {kind} primary key holding a lone surrogate")
        try:
            value_type = py_type_to_sc_type(type(value))
        except TypeError:
            return Problem(key, f"a {kind} primary key")
        known = self.key_types.setdefault(key, value_type)
        if known == value_type:
            self.key_py_types.setdefault(key, type(value))
        elif type_problem(value, known) is not None:
            shown = short(repr(value), VALUE_CHARS)
            return Problem(key, f"a {kind} primary key ({shown}) where earlier keys are {known}")
        return None

    def line(self, problem: Problem, row: dict) -> str:
        """The one line a bad row fails the run with."""
        advice = "fix the API's value, or set on_invalid: quarantine to set such rows aside"
        what = problem.what
        if what == "missing primary key":
            fields = short(", ".join(sorted(map(str, row))) or "none", 120)
            what = f"{what} (the row's fields: {fields})"
            advice = f"fix primary_key in the spec if it names no field, else {advice}"
        return (
            f"resource {self.resource} ({shown_path(self.spec_file)}): field"
            f" `{problem.field}`: {what}; {advice}"
        )


def page_suspect(rows: list) -> bool:
    """Whether any string of `rows` may hold NUL or a lone surrogate: the page written by
    orjson (C speed) holds no `\\u0000` and orjson, which refuses a lone surrogate, wrote it;
    rows orjson cannot write (a Decimal, a bytes value) are read value by value.

    Most pages hold no escape at all: one `memchr` for a backslash (~2 us a page of 1,000
    rows) then spares the search for the six bytes (~140 us). Keys that are not strings are
    rare, so orjson first writes without `OPT_NON_STR_KEYS` (which doubles its time)."""
    try:
        written = orjson.dumps(rows)
    except TypeError:  # orjson.JSONEncodeError: a key that is not a str, or a value type
        try:
            written = orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return any(map(_suspect, rows))
    return BACKSLASH in written and NUL_ESCAPE in written


def _suspect(value: Any) -> bool:
    """Whether a string in `value`, at any depth, holds NUL or a lone surrogate. The common
    case is quick: `isascii` is a flag CPython keeps on every string."""
    kind = type(value)
    if kind is str:
        return NUL in value or (not value.isascii() and _SURROGATE.search(value) is not None)
    if kind is dict:
        return any(map(_suspect, value.values()))
    if kind is list:
        return any(map(_suspect, value))
    return False


def strip_nul(value: Any) -> Any:
    """`value` with NUL removed from every string in it (dict keys too), at any depth."""
    if isinstance(value, str):
        return value.replace(NUL, "") if NUL in value else value
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value


def shown_path(path: Path | str) -> str:
    """`path` as the user wrote it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def surrogate_field(value: Any, path: str = "") -> tuple[str, str] | None:
    """The dotted path and the text of the first string in `value` holding a lone surrogate,
    or None."""
    if isinstance(value, str):
        return ((path or "value"), value) if _SURROGATE.search(value) else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        found = surrogate_field(inner, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def bad_values_step(
    resource: ResourceSpec, spec_file: Path | str, quarantine: Quarantine | None = None
) -> BadValues:
    """The step that guards `resource`'s rows (see the module)."""
    return BadValues(
        resource.name,
        spec_file,
        primary_key=resource.primary_key_columns,
        declared={c.name: c.data_type for c in resource.columns},
        quarantine=quarantine,
    )
