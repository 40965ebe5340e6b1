"""Record transforms: `record_filter`, `add_fields`, `remove_fields`, `rename_fields`.

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
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, ClassVar

import dlt
from dlt.extract import DltResource
from dlt.extract.items_transform import ItemTransform
from dlt.sources.rest_api import paginate_dependent_resource, record_endpoint_input

from restsync_assets.specs.model import TransformsSpec
from restsync_assets.specs.templates import CompiledTemplate, TemplateError, compile_template
from restsync_assets.specs.validate.transforms import is_template

#: rest_api resource config keys that are not dlt resource hints
NOT_HINTS = ("endpoint", "include_from_parent", "parallelized", "processing_steps")
_MISSING = object()


class TransformError(ValueError):
    """A template failed on a row: one line naming the resource and the key."""


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


class RecordTransforms:
    """One resource's transforms, compiled once; `page` applies them to a page of rows."""

    def __init__(self, spec: TransformsSpec, resource: str) -> None:
        self.resource = resource
        self.filter = compile_template(spec.record_filter) if spec.record_filter else None
        self.add = tuple(
            (name, _split(name), compile_template(v) if is_template(v) else v)
            for name, v in spec.add_fields.items()
        )
        self.remove = tuple(_split(f) for f in spec.remove_fields)
        self.rename = tuple((_split(old), _split(new)) for old, new in spec.rename_fields.items())

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
        if self.filter is not None and not self._evaluate(self.filter, "record_filter", context):
            return None
        row = dict(record)
        for name, path, value in self.add:
            if isinstance(value, CompiledTemplate):
                value = self._evaluate(value, f"add_fields.{name}", context)
            else:
                value = copy.deepcopy(value)  # a literal list or mapping: one copy per row
            _set(row, path, value)
        for path in self.remove:
            _pop(row, path)
        for old, new in self.rename:
            value = _pop(row, old)
            if value is not _MISSING:
                _set(row, new, value)
        return row

    def _evaluate(self, template: CompiledTemplate, key: str, context: dict[str, Any]) -> Any:
        try:
            return template.evaluate(**context)
        except TemplateError as error:
            problem = str(error)
        # raised outside the handler: with the TemplateError as its context, a run's failure
        # line (`failures.explain`, the deepest restsync error) would lose resource and key
        raise TransformError(f"resource {self.resource}: {key}: {problem}")


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
    concurrent: bool,
) -> DltResource:
    """A transformer of `parent` that reads `child`'s pages parent by parent and transforms
    each page with that parent's row in scope."""
    args = {**child.explicit_args, "parallelized": False}

    def pages(item: dict[str, Any]) -> Iterator[list[Any]]:
        for page in paginate_dependent_resource([item], **args):
            rows = transforms.page(page, parent=item)
            if rows:
                yield rows

    def all_rows(item: dict[str, Any]) -> list[Any]:
        return [row for page in pages(item) for row in page]

    def per_parent(items: Any) -> Iterator[Any]:
        for item in items if isinstance(items, list) else [items]:
            if concurrent:  # one job per parent in dlt's extract pool
                yield partial(all_rows, item)
            else:
                yield from pages(item)

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
