"""Parents and ancestors: each resource's one parent (dlt allows one), the ancestor keys carried
down through `include_from_parent`, and the bindings rewritten into dlt's syntax."""

from __future__ import annotations

from restsync_assets.specs.errors import Invalid
from restsync_assets.specs.model import FAN_KEYS, Binding


class Lineage:
    """Parent of each resource and the ancestor keys carried down to it."""

    def __init__(self, bindings: dict[str, tuple[Binding, ...]]):
        self.bindings = bindings
        self._parents: dict[str, str | None] = {}
        for name in bindings:
            self.parent(name)

    def parent(self, name: str, visiting: tuple[str, ...] = ()) -> str | None:
        if name in self._parents:
            return self._parents[name]
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise Invalid(
                f"resources depend on each other in a cycle: {cycle}", resource=name, key="endpoint"
            )
        targets = list(dict.fromkeys(b.resource for b in self.bindings[name]))
        chosen = None
        for target in targets:
            line = {target, *self.ancestors(target, (*visiting, name))}
            if all(t in line for t in targets):
                chosen = target
                break
        if targets and chosen is None:
            raise Invalid(
                f"binds to {', '.join(targets)}, which are not on one parent chain (dlt allows one parent)",
                resource=name,
                key="endpoint.path",
            )
        self._parents[name] = chosen
        return chosen

    def ancestors(self, name: str, visiting: tuple[str, ...] = ()) -> list[str]:
        chain = []
        current = self.parent(name, visiting)
        while current is not None:
            chain.append(current)
            current = self.parent(current)
        return chain

    def ordered(self, resources: list[dict]) -> list[dict]:
        """Parents before children, otherwise in file order."""
        depth = {name: len(self.ancestors(name)) for name in self.bindings}
        return sorted(resources, key=lambda r: depth[r["name"]])

    def carried_fields(self) -> dict[str, list[str]]:
        """Fields each resource must take from its parent (`include_from_parent`) for descendants."""
        carried: dict[str, list[str]] = {}
        for name, bindings in self.bindings.items():
            parent = self._parents[name]
            for b in bindings:
                if b.resource != parent:
                    for resource, fld in self._carried_down(b, parent)[0]:
                        carried.setdefault(resource, []).append(fld)
        return carried

    def bound_params(self, name: str, params: dict) -> dict:
        """`params` with each placeholder bound as a dlt resolve param of the parent."""
        params, parent = dict(params), self._parents[name]
        for b in self.bindings[name]:
            if not b.placeholder.startswith("resources."):
                written = params.get(b.placeholder)
                fan = (
                    {k: v for k, v in written.items() if k in FAN_KEYS}
                    if isinstance(written, dict)
                    else {}
                )
                params[b.placeholder] = {
                    "type": "resolve",
                    "resource": parent,
                    "field": self._field_on_parent(b, parent),
                    **fan,
                }
        return params

    def bound_path(self, name: str, path: str) -> str:
        """`path` with each `{resources.<ancestor>.<field>}` read from the parent instead."""
        parent = self._parents[name]
        for b in self.bindings[name]:
            if b.placeholder.startswith("resources.") and b.resource != parent:
                field = self._field_on_parent(b, parent)
                path = path.replace("{" + b.placeholder + "}", f"{{resources.{parent}.{field}}}")
        return path

    def _field_on_parent(self, binding: Binding, parent: str) -> str:
        """The field of `parent`'s rows that holds the bound value (carried down if needed)."""
        if binding.resource == parent:
            return binding.field
        return self._carried_down(binding, parent)[1]

    def _carried_down(self, binding: Binding, parent: str) -> tuple[list[tuple[str, str]], str]:
        """Each resource from just below the bound ancestor down to `parent`, top first, with
        the field it takes from its parent; and the field `parent`'s rows then hold."""
        from dlt.sources.rest_api.config_setup import make_parent_key_name

        chain = [parent, *self.ancestors(parent)]
        steps, owner, fld = [], binding.resource, binding.field
        for resource in reversed(chain[: chain.index(binding.resource)]):
            steps.append((resource, fld))
            owner, fld = resource, make_parent_key_name(owner, fld)
        return steps, fld
