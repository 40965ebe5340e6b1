"""`record_filter`, `add_fields`, `remove_fields`, `remove_values_when`, `rename_fields`,
`normalize_keys` into a `TransformsSpec`.

Templates are parsed here (a syntax error is a spec error); they may read `record`, and
`parent` on a child resource (`remove_values_when` also `value`). Keys, cursors and `schema` name fields as after the transforms,
so a primary key or cursor the transforms remove or rename away is refused.
"""

from __future__ import annotations

from typing import Any

from restsync_assets.specs.errors import Invalid
from restsync_assets.specs.model import KEY_CASES, TRANSFORM_KEYS, TransformsSpec
from restsync_assets.specs.templates import is_template


def validate_transforms(
    raw: dict, resource: str, *, child: bool, keys: tuple[str, ...] = ()
) -> TransformsSpec | None:
    """The resource's transforms (None when it has none); `keys` are the fields that must
    exist after them (primary key, incremental cursor)."""
    if not any(raw.get(k) is not None for k in TRANSFORM_KEYS):
        return None
    context = ("record", "parent") if child else ("record",)
    spec = TransformsSpec(
        record_filter=_filter(raw.get("record_filter"), resource, context),
        add_fields=_add(raw.get("add_fields"), resource, context),
        remove_fields=_remove(raw.get("remove_fields"), resource),
        remove_values_when=_remove_values(raw.get("remove_values_when"), resource, context),
        rename_fields=_rename(raw.get("rename_fields"), resource),
        normalize_keys=_normalize(raw.get("normalize_keys"), resource),
    )
    _check_collisions(spec, resource, keys)
    return spec


_EXAMPLE = "e.g. \"{{ record.status != 'archived' }}\""


def _compiled(text: str, resource: str, key: str, context: tuple[str, ...]) -> Any:
    from restsync_assets.specs.templates import TemplateError, compile_template

    try:
        template = compile_template(text)
    except TemplateError as error:
        raise Invalid(str(error), resource=resource, key=key) from None
    unknown = sorted(template.variables - set(context))
    if unknown:
        raise Invalid(
            f"template reads {unknown[0]!r}; it may read {' and '.join(context)}"
            + ("" if "parent" in context else " (parent only on a child resource)"),
            resource=resource,
            key=key,
        )
    return template


def _filter(value: Any, resource: str, context: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_template(value):
        raise Invalid(
            f"must be a template string, {_EXAMPLE}", resource=resource, key="record_filter"
        )
    if not _compiled(value, resource, "record_filter", context).is_expression:
        raise Invalid(
            f"must be a single {{{{ expression }}}} whose truth keeps the row, {_EXAMPLE}",
            resource=resource,
            key="record_filter",
        )
    return value


def _remove_values(value: Any, resource: str, context: tuple[str, ...]) -> str | None:
    key = "remove_values_when"
    example = 'e.g. "{{ value is none }}"'
    if value is None:
        return None
    if not isinstance(value, str) or not is_template(value):
        raise Invalid(f"must be a template string, {example}", resource=resource, key=key)
    if not _compiled(value, resource, key, ("value", *context)).is_expression:
        raise Invalid(
            f"must be a single {{{{ expression }}}} whose truth removes the field, {example}",
            resource=resource,
            key=key,
        )
    return value


_KEY_STEPS = f"{', '.join(KEY_CASES)} or {{replace: OLD, with: NEW}}"


def _normalize(value: Any, resource: str) -> tuple[str | dict[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise Invalid(
            f"must be a list of steps ({_KEY_STEPS}), e.g. [snake_case]",
            resource=resource,
            key="normalize_keys",
        )
    return tuple(_key_step(step, resource, f"normalize_keys.{i}") for i, step in enumerate(value))


def _key_step(step: Any, resource: str, key: str) -> str | dict[str, str]:
    if step in KEY_CASES:
        return str(step)
    replace = isinstance(step, dict) and set(step) == {"replace", "with"}
    if replace and all(isinstance(v, str) for v in step.values()) and step["replace"]:
        return {"replace": step["replace"], "with": step["with"]}
    raise Invalid(
        f"{step!r} is no key step; allowed: {_KEY_STEPS} (OLD a non-empty string)",
        resource=resource,
        key=key,
    )


def _path(value: Any, resource: str, key: str) -> str:
    """A field path: `name` or `a.b` (no empty part)."""
    if not isinstance(value, str) or not all(value.split(".")):
        raise Invalid(
            f"field {value!r} must be a name or a dotted path such as a.b",
            resource=resource,
            key=key,
        )
    return value


def _add(value: Any, resource: str, context: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise Invalid(
            "must map field names to a literal or a template, e.g. {region: eu}",
            resource=resource,
            key="add_fields",
        )
    for field, template in value.items():
        key = f"add_fields.{field}"
        _path(field, resource, key)
        if is_template(template):
            _compiled(template, resource, key, context)
    return dict(value)


def _remove(value: Any, resource: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise Invalid(
            "must be a list of field names, e.g. [internal_notes]",
            resource=resource,
            key="remove_fields",
        )
    fields = tuple(_path(f, resource, "remove_fields") for f in value)
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        raise Invalid(f"field {twice[0]!r} is listed twice", resource=resource, key="remove_fields")
    return fields


def _rename(value: Any, resource: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise Invalid(
            "must map old field names to new ones, e.g. {old_name: new_name}",
            resource=resource,
            key="rename_fields",
        )
    targets: dict[str, str] = {}
    for old, new in value.items():
        key = f"rename_fields.{old}"
        _path(old, resource, key)
        _path(new, resource, key)
        if new in targets:
            raise Invalid(
                f"{targets[new]!r} and {old!r} are both renamed to {new!r}",
                resource=resource,
                key=key,
            )
        if new in value:
            raise Invalid(
                f"{new!r} is itself renamed; rename each field to a name no other rename uses",
                resource=resource,
                key=key,
            )
        targets[new] = old
    return dict(value)


def _check_collisions(spec: TransformsSpec, resource: str, keys: tuple[str, ...]) -> None:
    for field in spec.remove_fields:
        if field in spec.add_fields:
            raise Invalid(
                f"{field!r} is added by add_fields and removed again",
                resource=resource,
                key="remove_fields",
            )
    for old, new in spec.rename_fields.items():
        if new in spec.add_fields:
            raise Invalid(
                f"{old!r} is renamed to {new!r}, which add_fields adds too",
                resource=resource,
                key=f"rename_fields.{old}",
            )
    gone = {f: "remove_fields" for f in spec.remove_fields}
    gone.update({old: f"rename_fields.{old}" for old in spec.rename_fields})
    for field in keys:
        if field in gone:
            raise Invalid(
                f"takes away {field!r}, a key of the resource (primary_key or incremental"
                " cursor_path); keys name fields as they are after the transforms",
                resource=resource,
                key=gone[field],
            )
