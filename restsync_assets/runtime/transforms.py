"""Record transforms: `record_filter`, `add_fields`, `remove_fields`, `remove_values_when`,
`rename_fields`, `normalize_keys`.

Applied to each row in that order, before everything else dlt and restsync do with the rows
(dlt's incremental, `ArrowPages`, the checks, the load): primary keys, cursors, `schema`
columns and the table all name fields as they are AFTER the transforms.

- A top-level resource gets `TransformStep`, a dlt pipe step with placement affinity 0.5:
  after the request (the resource's generator), before dlt's incremental (1) and limit
  (1.1), restsync's `ArrowPages` (1.5) and dlt's fork to the children (2). So a child's
  `{resources.<parent>.<field>}` placeholders read the parent's transformed rows. A step
  that validates rows (affinity between 0.5 and 1) sees transformed rows too.
- A child is read parent by parent (`transformed_child`, the same way `child_cursors` reads
  an incremental child): dlt's `paginate_dependent_resource` fetches one parent's pages and
  each page is transformed with `parent` (that parent's row, as transformed) in scope.

Templates are compiled once per run; a single `{{ expression }}` gives the expression's
native value (a number stays a number), other text renders to a string. Literal values
(anything that is not a string holding `{{` or `{%`) are added as they are.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, ClassVar

import dlt
from dlt.extract import DltResource
from dlt.extract.items_transform import ItemTransform
from dlt.sources.rest_api import paginate_dependent_resource, record_endpoint_input

from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.known_parents import is_parents_done
from restsync_assets.runtime.ordered_jobs import ordered_rows
from restsync_assets.specs.model import TransformsSpec
from restsync_assets.specs.templates import (
    CompiledTemplate,
    TemplateError,
    compile_template,
    is_template,
)

#: rest_api resource config keys that are not dlt resource hints
NOT_HINTS = ("endpoint", "include_from_parent", "parallelized", "processing_steps")
_MISSING = object()


class TransformError(RestsyncError, ValueError):
    """A template failed on a row: one line naming the resource and the key."""

    kind = "data"


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


#: One key of `transforms`, compiled: `(row, context)` -> the row (changed in place; it is
#: the step's own copy) or None when the row is dropped. `context` holds the row as it came
#: (`record`) and, on a child, its parent's row (`parent`).
Step = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]


def _evaluate(template: CompiledTemplate, resource: str, key: str, context: dict[str, Any]) -> Any:
    try:
        return template.evaluate(**context)
    except TemplateError as error:
        problem = str(error)
    # raised outside the handler: with the TemplateError as its context, a run's failure
    # line (`failures.explain`, the deepest restsync error) would lose resource and key
    raise TransformError(f"resource {resource}: {key}: {problem}")


def record_filter(template: str, resource: str) -> Step:
    """`record_filter`: rows for which the expression is false are dropped."""
    compiled = compile_template(template)

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any] | None:
        return row if _evaluate(compiled, resource, "record_filter", context) else None

    return step


def add_fields(fields: dict[str, Any], resource: str) -> Step:
    """`add_fields`: each path set to its literal value (a copy per row) or template's value."""
    added = tuple(
        (name, _split(name), compile_template(v) if is_template(v) else v)
        for name, v in fields.items()
    )

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        for name, path, value in added:
            if isinstance(value, CompiledTemplate):
                value = _evaluate(value, resource, f"add_fields.{name}", context)
            else:
                value = copy.deepcopy(value)  # a literal list or mapping: one copy per row
            _set(row, path, value)
        return row

    return step


def remove_fields(fields: tuple[str, ...], resource: str) -> Step:
    """`remove_fields`: each path removed (absent ones are left alone)."""
    paths = tuple(_split(f) for f in fields)

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        for path in paths:
            _pop(row, path)
        return row

    return step


def rename_fields(renames: dict[str, str], resource: str) -> Step:
    """`rename_fields`: each old path's value moved to its new path (when present)."""
    pairs = tuple((_split(old), _split(new)) for old, new in renames.items())

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        for old, new in pairs:
            value = _pop(row, old)
            if value is not _MISSING:
                _set(row, new, value)
        return row

    return step


def remove_values_when(template: str, resource: str) -> Step:
    """`remove_values_when`: every field of the row and of its nested objects whose value is
    a scalar (string, number, boolean, null) for which the template, over `value` (and the
    row), is true is removed; lists and their items are left as they are."""
    compiled = compile_template(template)

    def prune(node: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        kept = {}
        for key, value in node.items():
            if isinstance(value, dict):
                kept[key] = prune(value, context)
            elif isinstance(value, list) or not _evaluate(
                compiled, resource, "remove_values_when", {**context, "value": value}
            ):
                kept[key] = value
        return kept

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        return prune(row, context)

    return step


#: Airbyte's `KeysToSnakeCase` tokens: a capitalised or lower-case word, a number, or a run
#: of other characters (a separator)
_SNAKE_TOKENS = re.compile(r"[A-Z]+[a-z]*|[a-z]+|\d+|(?P<sep>[^a-zA-Z\d]+)")


def snake_case(key: str) -> str:
    """`key` in snake case, by Airbyte's `KeysToSnakeCase` rules (`createdAt`, `Created At`
    -> `created_at`; a leading number gets a leading `_`); accented letters lose their accent."""
    ascii_key = "".join(
        c for c in unicodedata.normalize("NFKD", key) if not unicodedata.combining(c)
    )
    tokens = [
        "" if m.group("sep") is not None else m.group(0) for m in _SNAKE_TOKENS.finditer(ascii_key)
    ]
    if len(tokens) >= 3:
        tokens = tokens[:1] + [t for t in tokens[1:-1] if t] + tokens[-1:]
    if tokens and tokens[0].isdigit():
        tokens.insert(0, "")
    return "_".join(t.lower() for t in tokens)


def _nested_keys(rename: Callable[[str], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A copy of a mapping with `rename` applied to its keys and its nested mappings' keys."""

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        return {rename(k): apply(v) if isinstance(v, dict) else v for k, v in data.items()}

    return apply


def _key_step(step: str | dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if step == "lower":
        return lambda row: {k.lower(): v for k, v in row.items()}
    if step == "snake_case":
        return _nested_keys(snake_case)
    assert isinstance(step, dict)
    old, new = step["replace"], step["with"]
    return _nested_keys(lambda key: key.replace(old, new))


def normalize_keys(steps: tuple[str | dict[str, str], ...], resource: str) -> Step:
    """`normalize_keys`: the row's keys renamed by each step in order: `lower` (top-level
    keys), `snake_case` and `{replace: OLD, with: NEW}` (nested objects' keys too), as
    Airbyte's `KeysToLower`, `KeysToSnakeCase` and `KeysReplace` do."""
    renames = tuple(_key_step(s) for s in steps)

    def step(row: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        for rename in renames:
            row = rename(row)
        return row

    return step


#: `factory(the key's value, resource name)` of each key of `TransformsSpec`, in the order
#: the steps apply: the one registry of transforms (a new one is a model field and an entry).
TRANSFORM_STEPS: dict[str, Callable[[Any, str], Step]] = {
    "record_filter": record_filter,
    "add_fields": add_fields,
    "remove_fields": remove_fields,
    "remove_values_when": remove_values_when,
    "rename_fields": rename_fields,
    "normalize_keys": normalize_keys,
}


class RecordTransforms:
    """One resource's transforms, compiled once; `page` applies them to a page of rows."""

    def __init__(self, spec: TransformsSpec, resource: str) -> None:
        self.resource = resource
        self.steps = tuple(
            factory(value, resource)
            for key, factory in TRANSFORM_STEPS.items()
            if (value := getattr(spec, key))
        )

    def page(self, rows: list[Any], parent: dict[str, Any] | None = None) -> list[Any]:
        """The page's rows transformed; the rows the filter drops are left out."""
        out = []
        for row in rows:
            transformed = self.row(row, parent)
            if transformed is not None:
                out.append(transformed)
        return out

    def row(self, record: Any, parent: dict[str, Any] | None = None) -> Any:
        """`record` transformed (a new dict), or None when the filter drops it."""
        if not isinstance(record, dict):
            return record
        context = {"record": record} if parent is None else {"record": record, "parent": parent}
        row: dict[str, Any] | None = dict(record)
        for step in self.steps:
            row = step(row, context)
            if row is None:
                return None
        return row


def _set(row: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set `a.b` in `row`, copying (or creating) the objects on the way."""
    node = row
    for part in path[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[path[-1]] = value


def _pop(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Remove `a.b` from `row` (copying the objects on the way); `_MISSING` when absent."""
    node = row
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return _MISSING
        node[part] = child = dict(child)
        node = child
    return node.pop(path[-1], _MISSING)


class TransformStep(ItemTransform[Any, dict[str, Any]]):
    """dlt pipe step of a top-level resource: each page (or row) through `RecordTransforms`."""

    #: before dlt's incremental (1), `ArrowPages` (1.5) and dlt's fork to children (2)
    placement_affinity: ClassVar[float] = 0.5

    def __init__(self, transforms: RecordTransforms) -> None:
        super().__init__(lambda item: item)
        self.transforms = transforms

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if is_parents_done(meta):
            return item  # the empty page that tells children the parent is done
        if isinstance(item, list):
            return self.transforms.page(item) or None
        if isinstance(item, dict):
            return self.transforms.row(item)
        return item


def transformed_child(
    child: DltResource,
    parent: DltResource,
    config: dict[str, Any],
    transforms: RecordTransforms,
    *,
    concurrency: int,
) -> DltResource:
    """A transformer of `parent` that reads `child`'s pages parent by parent and transforms
    each page with that parent's row in scope; at `concurrency` > 1 a page of parents at once,
    their rows handed over in parent order (`ordered_jobs.in_order`)."""
    args = {**child.explicit_args, "parallelized": False}

    def pages(item: dict[str, Any]) -> Iterator[list[Any]]:
        for page in paginate_dependent_resource([item], **args):
            rows = transforms.page(page, parent=item)
            if rows:
                yield rows

    def all_rows(item: dict[str, Any]) -> list[Any]:
        return [row for page in pages(item) for row in page]

    def per_parent(items: Any) -> Iterator[Any]:
        parents = items if isinstance(items, list) else [items]
        if concurrency > 1:
            jobs = (partial(all_rows, item) for item in parents)
            return ordered_rows(jobs, args["client"], concurrency, child.name)
        return (page for item in parents for page in pages(item))

    return child_resource(per_parent, parent, config, args)


def child_resource(
    per_parent: Callable[[Any], Iterator[Any]],
    parent: DltResource,
    config: dict[str, Any],
    args: dict[str, Any],
) -> DltResource:
    """The transformer of `parent` that replaces a child dlt built: `per_parent` turns the
    parent's items into the child's pages; the child's hints (from its rest_api `config`) and
    its endpoint (`args`, what dlt bound to its `paginate_dependent_resource`) are kept."""
    hints = {k: v for k, v in config.items() if k not in NOT_HINTS}
    resource = dlt.resource(per_parent, data_from=parent, **hints)
    record_endpoint_input(resource, args["client"], args["path"])
    return resource
