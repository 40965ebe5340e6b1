"""Per-parent cursors for incremental children: one cursor per parent row, not one per resource.

dlt's `rest_api` gives a child resource (a transformer: one request per parent row) ONE
`Incremental`. It fills `start_param` from the running last value and filters rows against
it across all parents (dlt issue 2429; Airbyte issue 28278 asks for the same), so a parent
whose children are older than another parent's newest child is asked from the wrong point
and its rows are lost. Shared between threads (`client.concurrency`), the result also
depends on timing.

restsync therefore keeps an incremental child's cursor itself. dlt still builds the child
from the spec (path, params, paginator, hooks, `include_from_parent`); restsync reads that
request template from the dlt resource's `explicit_args` and puts its own transformer in the
child's place, which for each parent row:

1. looks up that parent's cursor (keyed by the parent values the request binds, e.g. the
   repo's `id`) in the child's resource state; a parent never seen starts at `initial_value`;
2. has dlt's `paginate_dependent_resource` fetch that parent's pages with a request window
   that starts at the parent's own cursor (dlt's code fills `start_param`, `end_param` and
   `{incremental.*}` placeholders from it);
3. keeps the rows at or past that start, by dlt's rules (`range_start`, `range_end`,
   `end_value`, `lag`, `on_cursor_value_missing`, rows at the start deduplicated by key);
4. records the parent's new maximum (and the keys of the rows at it) once all its pages
   were read.

The cursors live in dlt's resource state of the child, which dlt commits into
`_dlt_pipeline_state` with the same load as the rows: they survive lost local state and
never run ahead of the data. With `client.concurrency` above 1 each parent's fetch is one
job on the session's pool of child jobs (`ordered_jobs`, as many threads as the concurrency,
rows handed to dlt in parent order): a job reads and writes only its own parent's cursor, so the
rows loaded do not depend on which job runs first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import dlt
from dlt.common import jsonpath
from dlt.extract import DltResource
from dlt.extract.incremental.lag import apply_lag
from dlt.sources.rest_api import (
    paginate_dependent_resource,
    rest_api_resources,
)
from dlt.sources.rest_api.config_setup import collect_resolved_values

from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.known_parents import (
    KnownParents,
    is_parents_done,
    parents_done,
    sees_every_parent,
    with_parents_done,
)
from restsync_assets.runtime.ordered_jobs import ordered_rows
from restsync_assets.runtime.transforms import (
    RecordTransforms,
    child_resource,
    transformed_child,
)
from restsync_assets.specs.model import ChildCursorSpec, ResourceSpec, SourceSpec

#: Where the cursors live in the child's dlt resource state: `{cursor_path: {parent: ...}}`.
STATE_KEY = "per_parent_cursors"


class CursorError(RestsyncError, ValueError):
    """A child row whose cursor cannot be used (missing, or not comparable): one line."""

    kind = "data"


def with_per_parent_cursors(
    spec: SourceSpec,
    config: dict,
    transforms: Mapping[str, RecordTransforms] | None = None,
    scanned: frozenset[str] = frozenset(),
) -> dict:
    """`config` (dlt's `RESTAPIConfig`) with each incremental child keeping per-parent cursors
    and each child with record transforms read parent by parent (`transforms.transformed_child`).
    A child of an incremental parent (incremental or not; `parents: all`) also sees the
    parents in the warehouse (`known_parents`), unless the parent is `scanned` in full in this
    run: it is read parent by parent too, a child without a cursor keeping every row.

    Unchanged when no child is either; otherwise dlt builds every resource and each such
    child is replaced (its children re-attached to the replacement).
    """
    transforms = transforms or {}
    if not any(
        r.cursor or (r.parent and r.name in transforms) or sees_every_parent(spec, r, scanned)
        for r in spec.resources
    ):
        return config
    built = {r.name: r for r in rest_api_resources(config)}
    configs = {r["name"]: r for r in config["resources"]}
    replaced: set[str] = set()
    marked: set[str] = set()
    for resource in spec.resources:  # parents before children
        if resource.parent is None:
            continue
        parent = built[resource.parent]
        every_parent = sees_every_parent(spec, resource, scanned)
        if resource.cursor is not None or every_parent:
            top_level = spec.resource(resource.parent).parent is None
            if every_parent and top_level and resource.parent not in marked:
                parent._pipe.replace_gen(with_parents_done(parent._pipe.gen))
                marked.add(resource.parent)  # one `ParentsDone` page, whatever the children
            built[resource.name] = per_parent_transformer(
                built[resource.name],
                parent,
                configs[resource.name],
                resource.cursor,
                concurrency=spec.concurrency,
                transforms=transforms.get(resource.name),
                known=_known_parents(resource, built[resource.name], parent)
                if every_parent
                else None,
                forwards_done=any(
                    sees_every_parent(spec, c, scanned) for c in spec.children(resource.name)
                ),
            )
            replaced.add(resource.name)
        elif resource.name in transforms:
            built[resource.name] = transformed_child(
                built[resource.name],
                parent,
                configs[resource.name],
                transforms[resource.name],
                concurrency=spec.concurrency,
            )
            replaced.add(resource.name)
        elif resource.parent in replaced:
            built[resource.name].pipe_data_from(parent)
    return {"client": config["client"], "resources": list(built.values())}


def per_parent_transformer(
    child: DltResource,
    parent: DltResource,
    config: dict[str, Any],
    cursor: ChildCursorSpec | None,
    *,
    concurrency: int,
    transforms: RecordTransforms | None = None,
    known: KnownParents | None = None,
    forwards_done: bool = False,
) -> DltResource:
    """A transformer of `parent` that loads `child`'s rows with one cursor per parent row
    (every row when `cursor` is None; each page transformed first, with the parent row in
    scope, when there are `transforms`).

    With `known`, once the parent is done (`known_parents.ParentsDone`) the child is also asked
    for every parent in the warehouse this run did not return; with `forwards_done` it then
    tells its own children it is done."""
    args = dict(child.explicit_args)  # the arguments dlt bound to its paginate_dependent_resource
    missing = {"path", "client", "resolved_params", "incremental_param"} - set(args)
    if missing:
        raise RuntimeError(
            f"resource {child.name}: this dlt version builds children differently (no"
            f" {', '.join(sorted(missing))}); restsync's per-parent cursors were built on dlt"
            " 1.31's rest_api"
        )
    dedup_key = _dedup_key(cursor, config) if cursor is not None else None
    fetcher = ParentFetcher(child.name, args, cursor, dedup_key, transforms)
    fetcher.known, fetcher.forwards_done = known, forwards_done

    def per_parent(items: Any, meta: Any = None) -> Iterator[Any]:
        # not a generator: the parents are counted as seen when they arrive, not when read
        return fetcher.run(items, meta=meta, concurrency=concurrency)

    return child_resource(per_parent, parent, config, fetcher.args)


def _known_parents(resource: ResourceSpec, child: DltResource, parent: DltResource) -> KnownParents:
    """How to read `resource`'s parents from the warehouse: the parent fields its request
    binds (as dlt resolves them) and the fields it carries (`include_from_parent`)."""
    fields = [p.resolve_config["field"] for p in child.explicit_args.get("resolved_params", ())]
    table = parent.table_name if isinstance(parent.table_name, str) else parent.name
    return KnownParents(
        resource.name, table, tuple(dict.fromkeys([*fields, *resource.include_from_parent]))
    )


def _dedup_key(cursor: ChildCursorSpec, config: dict[str, Any]) -> tuple[str, ...] | None:
    """The columns that identify a row at the cursor (empty: no deduplication), as in dlt."""
    if cursor.primary_key is not None:
        return cursor.primary_key
    key = config.get("primary_key")
    if key is None:
        return None  # the whole row
    return (key,) if isinstance(key, str) else tuple(key)


@dataclass(frozen=True)
class RequestWindow:
    """What dlt's request code reads from an incremental: one parent's window for this run."""

    initial_value: Any
    start_value: Any
    last_value: Any
    end_value: Any


class ParentFetcher:
    """Fetches a child's rows parent by parent, each from that parent's own cursor."""

    def __init__(
        self,
        resource: str,
        args: dict[str, Any],
        cursor: ChildCursorSpec | None,
        dedup_key: tuple[str, ...] | None,
        transforms: RecordTransforms | None = None,
    ):
        self.resource = resource
        self.transforms = transforms
        self.args = args
        self.cursor = cursor
        self.dedup_key = dedup_key
        self.lock = threading.Lock()  # parents' jobs record their cursors from worker threads
        #: the parents in the warehouse, asked for once the parent is done (None: not asked)
        self.known: KnownParents | None = None
        self.forwards_done = False
        self.seen: set[str] = set()  # the parents asked for in this run
        path = cursor.cursor_path if cursor is not None else None
        self._field = jsonpath.extract_simple_field_name(path) if path else None
        self._path = jsonpath.compile_path(path) if path and not self._field else None

    def run(self, items: Any, *, meta: Any = None, concurrency: int) -> Iterator[Any]:
        """Pages of kept rows; at `concurrency` > 1 one job per parent, `concurrency` at once,
        their rows handed over in parent order (`ordered_jobs.in_order`).

        On the parent's `ParentsDone` page: the known parents not seen in this run (then
        `ParentsDone` for this child's own children, with `forwards_done`)."""
        done = is_parents_done(meta)
        if done:
            items = self._unseen(self.known.rows()) if self.known is not None else []
        parents = [
            (item, self._parent_key(item))
            for item in (items if isinstance(items, list) else [items])
        ]
        self.seen.update(key for _, key in parents)
        return self._fetch(parents, concurrency, forward=done and self.forwards_done)

    def _unseen(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The warehouse's parents this run did not return, each once (newest first), and
        only those with every bound value (a null one cannot be asked for)."""
        unseen: dict[str, dict[str, Any]] = {}
        for row in rows:
            if any(v is None for v in self._bound_values(row).values()):
                continue
            key = self._parent_key(row)
            if key not in self.seen and key not in unseen:
                unseen[key] = row
        return list(unseen.values())

    def _bound_values(self, item: dict[str, Any]) -> dict[str, Any]:
        return collect_resolved_values(item, self.args["resolved_params"], None, None)

    def _fetch(
        self, parents: list[tuple[dict[str, Any], str]], concurrency: int, forward: bool
    ) -> Iterator[Any]:
        cursors = self._cursors()
        if concurrency > 1:
            jobs = (
                partial(self._all_rows, item, self._cursor(cursors, key)) for item, key in parents
            )
            yield from ordered_rows(jobs, self.args["client"], concurrency, self.resource)
        else:
            for item, key in parents:
                yield from self._pages(item, self._cursor(cursors, key))
        if forward:  # after the rows of every parent it was asked for
            yield parents_done()

    def _cursor(self, cursors: dict[str, Any], key: str) -> ParentCursor | EveryRow:
        if self.cursor is None:  # a child without a cursor keeps every row
            return EveryRow()
        with self.lock:
            stored = dict(cursors.get(key) or {})
        return ParentCursor(self, key, cursors, stored)

    def _cursors(self) -> dict[str, Any]:
        """The child's per-parent cursors in dlt's resource state (a closed range keeps none,
        nor a child without a cursor)."""
        if self.cursor is None or self.cursor.stateless:
            return {}
        state = dlt.current.resource_state(self.resource)
        return state.setdefault(STATE_KEY, {}).setdefault(self.cursor.cursor_path, {})

    def _parent_key(self, item: dict[str, Any]) -> str:
        """The parent values the child's request binds (one value: itself, else JSON)."""
        values = self._bound_values(item)
        if len(values) == 1:
            return str(next(iter(values.values())))
        return json.dumps(values, sort_keys=True, default=str)

    def _pages(self, item: dict[str, Any], parent: ParentCursor | EveryRow) -> Iterator[list[Any]]:
        """The parent's pages (kept rows only); its cursor moves after the last page.

        dlt's own request code fills the parent's window into `start_param`, `end_param` and
        `{incremental.*}` placeholders: it reads only the four values of `RequestWindow`.
        """
        args = {
            **self.args,
            "params": dict(self.args.get("params") or {}),
            "incremental_object": parent.window() or self.args.get("incremental_object"),
            "parallelized": False,
        }
        pages = paginate_dependent_resource([item], **args)
        try:
            for page in pages:
                if self.transforms is not None:
                    page = self.transforms.page(page, parent=item)
                rows = [row for row in page if parent.keep(row)]
                if rows:
                    yield rows
                if parent.exhausted:
                    break
        finally:
            pages.close()
        parent.commit()

    def _all_rows(self, item: dict[str, Any], parent: ParentCursor | EveryRow) -> list[Any]:
        return [row for rows in self._pages(item, parent) for row in rows]

    def value(self, row: Any) -> Any:
        """The cursor value of `row` (None when it has none)."""
        if not isinstance(row, dict):
            return None
        if self._field is not None:
            return row.get(self._field)
        values = jsonpath.find_values(self._path, row)
        return values[0] if values else None


class EveryRow:
    """A child without a cursor, read parent by parent: every row is kept, nothing recorded."""

    exhausted = False

    def window(self) -> None:
        return None

    def keep(self, row: Any) -> bool:
        return True

    def commit(self) -> None:
        pass


class ParentCursor:
    """One parent's cursor during one run: where it starts, which rows it keeps, where it ends."""

    def __init__(
        self, fetcher: ParentFetcher, key: str, cursors: dict[str, Any], stored: dict[str, Any]
    ):
        self.fetcher = fetcher
        self.spec = fetcher.cursor
        self.key = key
        self.cursors = cursors
        self.last = stored.get("last_value")
        self.start_hashes = set(stored.get("unique_hashes") or ())
        self.start = self._start()
        self.newest: Any = None
        self.newest_hashes: set[str] = set()
        self.exhausted = False
        self.dedup = (
            self.spec.range_start == "closed"
            and not self.spec.stateless
            and not self.spec.lag
            and fetcher.dedup_key != ()
        )

    def _start(self) -> Any:
        if self.last is None or self.spec.stateless:
            return self.spec.initial_value
        if self.spec.lag:
            return apply_lag(self.spec.lag, self.spec.initial_value, self.last, max)
        return self.last

    def window(self) -> RequestWindow:
        return RequestWindow(self.spec.initial_value, self.start, self.start, self.spec.end_value)

    def keep(self, row: Any) -> bool:
        """Whether `row` is new for this parent; tracks the parent's newest value."""
        value = self._value(row)
        if value is None:
            return self.spec.on_cursor_value_missing == "include"
        spec = self.spec
        if spec.end_value is not None and self._past_end(value):
            self.exhausted = spec.row_order == "asc"
            return False
        if self.start is not None and not self._from_start(value, row):
            self.exhausted = spec.row_order == "desc"
            return False
        self._track(value, row)
        return True

    def _past_end(self, value: Any) -> bool:
        end = self.spec.end_value
        over = self._compare(value, end, "end_value")
        return over > 0 or (over == 0 and self.spec.range_end == "open")

    def _from_start(self, value: Any, row: Any) -> bool:
        order = self._compare(value, self.start, "the parent's cursor")
        if order != 0:
            return order > 0
        if self.spec.range_start == "open":
            return False
        return not (self.dedup and self._hash(row) in self.start_hashes)

    def _track(self, value: Any, row: Any) -> None:
        order = 1 if self.newest is None else self._compare(value, self.newest, "other rows")
        if order > 0:
            self.newest, self.newest_hashes = value, set()
        if order >= 0 and self.dedup:
            self.newest_hashes.add(self._hash(row))

    def commit(self) -> None:
        """Record this parent's newest value, never moving it back (a parent seen twice in one
        run keeps the newer); no-op for a closed range or when no row had a cursor."""
        if self.spec.stateless or self.newest is None:
            return
        with self.fetcher.lock:
            stored = self.cursors.get(self.key) or {}
            last = stored.get("last_value")
            order = 1 if last is None else self._compare(self.newest, last, "the stored cursor")
            if order < 0:
                return
            hashes = set(self.newest_hashes)
            if order == 0:
                hashes |= set(stored.get("unique_hashes") or ())
            self.cursors[self.key] = {"last_value": self.newest, "unique_hashes": sorted(hashes)}

    def _value(self, row: Any) -> Any:
        value = self.fetcher.value(row)
        if value is None and self.spec.on_cursor_value_missing == "raise":
            raise CursorError(
                f"resource {self.fetcher.resource}: a row of parent {self.key} has no"
                f" `{self.spec.cursor_path}` (the incremental cursor_path); set"
                " on_cursor_value_missing: include or exclude to load or skip such rows"
            )
        return value

    def _compare(self, value: Any, other: Any, what: str) -> int:
        try:
            return (value > other) - (value < other)
        except TypeError:
            raise CursorError(
                f"resource {self.fetcher.resource}: cursor `{self.spec.cursor_path}` value"
                f" {value!r} ({type(value).__name__}) cannot be compared with {what}"
                f" {other!r} ({type(other).__name__}); quote initial_value / end_value in the"
                " spec so they have the type of the API's values"
            ) from None

    def _hash(self, row: Any) -> str:
        key = self.fetcher.dedup_key
        # a row without its key is hashed whole: the resource's bad-value step after this one
        # fails the run on it, or quarantines it, naming the field
        keyed = key and isinstance(row, dict) and all(column in row for column in key)
        identity = [row[column] for column in key] if keyed else row
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]
