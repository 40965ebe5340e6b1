"""Stage 4: bindings: every placeholder bound to a value, a parent's field or dlt's context.

A path placeholder is filled by a plain param (as dlt does), bound by a resolve param or
`{resources.<parent>.<field>}`, or inferred (`{organization_id}` -> `organizations.id`).
The bindings give each resource its parent (`lineage`), and come out in dlt's syntax.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from restsync_assets.specs.errors import Invalid, allowed, mapping
from restsync_assets.specs.lineage import Lineage
from restsync_assets.specs.model import ENDPOINT_KEYS, EXTENSION_ENDPOINT_KEYS, FAN_KEYS, Binding
from restsync_assets.specs.model.request_values import RELATIVE_KINDS
from restsync_assets.specs.placeholders import bind_plain_params, template_fields

#: where in an endpoint dlt fills `{resources.*}` and `{incremental.*}` placeholders
TEMPLATED_KEYS = ("params", "json", "data", "headers")


class Bound(NamedTuple):
    """A resource with its bindings and its parent."""

    raw: dict
    #: the endpoint in dlt's syntax: resolve params and `{resources.<parent>.<field>}` paths
    endpoint: dict
    bindings: tuple[Binding, ...]
    parent: str | None
    #: fields it must take from its parent (`include_from_parent`) for its descendants
    carried: tuple[str, ...]


def bind_resources(resources: list[dict]) -> list[Bound]:
    """Every resource bound to its parent, parents before children."""
    names = [r["name"] for r in resources]
    found = {r["name"]: resource_bindings(r, names) for r in resources}
    bindings = {name: b for name, (b, _) in found.items()}
    for name, (_, unbound) in found.items():
        if unbound:
            raise unbound_error(name, unbound[0], bindings)
    lineage = Lineage(bindings)
    carried = lineage.carried_fields()
    return [
        Bound(
            raw=r,
            endpoint=_bound_endpoint(r, lineage),
            bindings=bindings[r["name"]],
            parent=lineage.parent(r["name"]),
            carried=tuple(carried.get(r["name"], ())),
        )
        for r in lineage.ordered(resources)
    ]


def resource_bindings(resource: dict, names: list[str]) -> tuple[tuple[Binding, ...], list[str]]:
    """The resource's bindings to parent fields, and its path placeholders nothing binds.

    Plain params named in the path are filled in first, as dlt does (`_bind_plain_params`).
    """
    name, endpoint = resource["name"], resource["endpoint"]
    unknown = set(endpoint) - {*ENDPOINT_KEYS, *EXTENSION_ENDPOINT_KEYS}
    if unknown:
        raise Invalid(
            f"unknown endpoint key; {allowed((*ENDPOINT_KEYS, *EXTENSION_ENDPOINT_KEYS))}",
            resource=name,
            key=f"endpoint.{sorted(unknown)[0]}",
        )
    if not isinstance(endpoint.get("path"), str):
        raise Invalid("must be a string", resource=name, key="endpoint.path")
    params = mapping(endpoint.get("params"), "endpoint.params", resource=name)
    resolved = [
        _resolve_param(p, v, names, name) for p, v in params.items() if _resolves(v, p, name)
    ]
    in_path = template_fields(bind_plain_params(name, endpoint), name, "endpoint.path")
    in_path = [p for p in in_path if p != listed_placeholder(resource)]  # `for_each` fills it
    fanned = {p for p, v in params.items() if isinstance(v, dict) and set(v) & set(FAN_KEYS)}
    bindings, unbound = _path_bindings(in_path, resolved, names, name, fanned)
    return (*bindings, *_context_bindings(endpoint, names, name)), unbound


def listed_placeholder(raw: dict) -> str | None:
    """The path placeholder a resource's `for_each` fills (its `field`), if it has one."""
    for_each = raw.get("for_each")
    field = for_each.get("field") if isinstance(for_each, dict) else None
    return field if isinstance(field, str) else None


def _path_bindings(
    in_path: list[str],
    resolved: list[tuple[Any, str, str]],
    names: list[str],
    resource: str,
    fanned: set[str] = frozenset(),
) -> tuple[list[Binding], list[str]]:
    """Bindings of the path's placeholders (resolve params first), and those nothing binds.
    A resolve param with `batch_size` or `explode` (`fanned`) may be a query param: restsync
    sends it itself."""
    for param, target, field in resolved:
        if param not in in_path and param not in fanned:
            raise Invalid(
                f"resolve param {param} is not in the path (dlt binds resolve params "
                f"in the path only); for a query param use {param}: "
                f'"{{resources.{target}.{field}}}"',
                resource=resource,
                key=f"endpoint.params.{param}",
            )
    bindings = [Binding(placeholder=p, resource=t, field=f) for p, t, f in resolved]
    bound = {b.placeholder for b in bindings}
    unbound: list[str] = []
    for placeholder in in_path:
        if placeholder in bound or placeholder.startswith("incremental."):
            continue
        if placeholder.startswith("resources."):
            bindings.append(_resources_binding(placeholder, names, resource, "endpoint.path"))
            continue
        target = _infer_parent(placeholder, names, resource)
        if target is None:
            unbound.append(placeholder)
        else:
            bindings.append(Binding(placeholder=placeholder, resource=target, field="id"))
    return bindings, unbound


def _context_bindings(endpoint: dict, names: list[str], resource: str) -> list[Binding]:
    """`{resources.<parent>.<field>}` in params, json, data and headers; `{incremental.*}` is
    dlt's; any other placeholder there fails."""
    bindings = []
    for where in TEMPLATED_KEYS:
        key = f"endpoint.{where}"
        for expr in template_fields(endpoint.get(where), resource, key):
            if expr.startswith("resources."):
                bindings.append(_resources_binding(expr, names, resource, key))
            elif not expr.startswith("incremental."):
                raise Invalid(
                    f"{{{expr}}} is not a placeholder dlt fills here: use "
                    "{resources.<parent>.<field>} or {incremental.start_value} (with an "
                    "incremental); write a literal { or } as {{ or }}",
                    resource=resource,
                    key=key,
                )
    return bindings


#: the `type`s a param mapping may have: dlt's two and restsync's relative times
PARAM_TYPES = ("resolve", "incremental", *RELATIVE_KINDS)


def _resolves(value: Any, param: str, resource: str) -> bool:
    """Whether a param is a resolve param (`{type: resolve, ...}`); other types fail but dlt's
    `incremental` and restsync's `now` and `today`."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in (None, *PARAM_TYPES):
        raise Invalid(
            f"unknown param type {kind!r}; {allowed(PARAM_TYPES)}",
            resource=resource,
            key=f"endpoint.params.{param}.type",
        )
    return kind == "resolve"


def _resolve_param(
    param: Any, value: dict, names: list[str], resource: str
) -> tuple[Any, str, str]:
    """A resolve param's (placeholder, parent, field), checked."""
    target, field = value.get("resource"), value.get("field")
    _check_target(target, names, resource, f"endpoint.params.{param}.resource")
    if not isinstance(field, str) or not field:
        raise Invalid(
            "must name a field of the parent",
            resource=resource,
            key=f"endpoint.params.{param}.field",
        )
    return param, target, field


def _resources_binding(expr: str, names: list[str], resource: str, key: str) -> Binding:
    parts = expr.split(".", 2)
    if len(parts) != 3 or not all(parts):
        raise Invalid(
            f"{{{expr}}} must look like {{resources.<resource>.<field>}}",
            resource=resource,
            key=key,
        )
    _check_target(parts[1], names, resource, key)
    return Binding(placeholder=expr, resource=parts[1], field=parts[2])


def _check_target(target: Any, names: list[str], resource: str, key: str) -> None:
    if target == resource:
        raise Invalid("a resource cannot be its own parent", resource=resource, key=key)
    if target not in names:
        raise Invalid(
            f"unknown resource {target!r}; {allowed(n for n in names if n != resource)}",
            resource=resource,
            key=key,
        )


def _infer_parent(placeholder: str, names: list[str], resource: str) -> str | None:
    """`{organization_id}` binds to the `id` of `organizations` (or `organization`)."""
    if not placeholder.endswith("_id") or placeholder == "parent_id":
        return None
    base = placeholder[: -len("_id")]
    candidates = [f"{base}s", base, f"{base}es"]
    if base.endswith("y"):
        candidates.append(f"{base[:-1]}ies")
    for candidate in candidates:
        if candidate in names and candidate != resource:
            return candidate
    return None


def unbound_error(
    resource: str, placeholder: str, bindings: dict[str, tuple[Binding, ...]]
) -> Invalid:
    """Unbound path placeholder: how to bind it, and which resources could be its parent."""
    below = _descendants(resource, bindings)
    parents = [n for n in bindings if n != resource and n not in below]
    return Invalid(
        f"placeholder {{{placeholder}}} is not bound: give it a value with "
        f"params.{placeholder}: <value>, or bind it to a parent's field with "
        f"{{resources.<parent>.<field>}} in the path or "
        f"params.{placeholder}: {{type: resolve, resource: <parent>, field: <field>}}"
        + (f"; possible parents: {', '.join(parents)}" if parents else ""),
        resource=resource,
        key="endpoint.path",
    )


def _descendants(resource: str, bindings: dict[str, tuple[Binding, ...]]) -> set[str]:
    """Resources bound to `resource`, directly or through others."""
    found: set[str] = set()
    frontier = [resource]
    while frontier:
        current = frontier.pop()
        for name, bs in bindings.items():
            if name not in found and any(b.resource == current for b in bs):
                found.add(name)
                frontier.append(name)
    return found


def _bound_endpoint(resource: dict, lineage: Lineage) -> dict:
    """A copy of the resource's endpoint with its bindings in dlt's syntax."""
    endpoint, name = dict(resource["endpoint"]), resource["name"]
    endpoint["params"] = lineage.bound_params(name, endpoint.get("params") or {})
    endpoint["path"] = lineage.bound_path(name, endpoint["path"])
    return endpoint
