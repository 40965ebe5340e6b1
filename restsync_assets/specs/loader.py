"""Read `source_specs/*.yaml`, merge `resource_defaults`, bind placeholders, validate once.

This is the only module that reads YAML. It turns each file into a `SourceSpec` or raises a
`SpecError` whose message is one line naming the file, the resource and the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from restsync_assets.specs.errors import SpecError, SpecValidationError, allowed
from restsync_assets.specs.model import (
    AUTH_TYPES,
    COLUMN_TYPES,
    DLT_AUTH_TYPES,
    PAGINATOR_TYPES,
    SECRET_AUTH_KEYS,
    AutomationSpec,
    Binding,
    ChecksSpec,
    Column,
    ErrorHandler,
    FreshnessSpec,
    OAuth2AuthSpec,
    OffsetPaginatorSpec,
    PartitionsSpec,
    ResourceSpec,
    ScheduleSpec,
    SourceSpec,
    TemplatedCursorPaginatorSpec,
)

SPEC_SUFFIXES = (".yaml", ".yml")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TOP_LEVEL_KEYS = (
    "name",
    "description",
    "client",
    "resource_defaults",
    "resources",
    "schedule",
    "owners",
    "tags",
)
CLIENT_KEYS = ("base_url", "headers", "auth", "paginator", "error_handler", "concurrency")
MAX_CONCURRENCY = 64
#: Endpoint keys of dlt's `rest_api` `Endpoint` TypedDict.
ENDPOINT_KEYS = (
    "path",
    "method",
    "params",
    "json",
    "data",
    "paginator",
    "data_selector",
    "response_actions",
    "incremental",
    "auth",
    "headers",
)
#: Resource keys that restsync reads itself and removes before handing the rest to dlt.
EXTENSION_RESOURCE_KEYS = (
    "error_handler",
    "schema",
    "partitions",
    "freshness",
    "checks",
    "automation_condition",
    "owners",
    "tags",
)
LAG_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
LAG_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER_RE = re.compile(r"\{([^{}]+)\}")
#: Dagster's tag keys: a name of 1-63 of [A-Za-z0-9_.-], optionally after one `prefix/`
TAG_KEY_RE = re.compile(r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$")


# --------------------------------------------------------------------------- public API


def spec_files(directory: Path) -> list[Path]:
    """The spec files of a folder, in name order (hidden files and `_`-prefixed ones skipped)."""
    return sorted(
        p
        for p in Path(directory).iterdir()
        if p.suffix in SPEC_SUFFIXES and not p.name.startswith((".", "_"))
    )


def load_specs(directory: Path | str) -> list[SourceSpec]:
    """Load and validate every spec in `directory`; raise `SpecValidationError` listing all problems."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpecValidationError(
            [
                SpecError(
                    directory,
                    "spec folder not found (set RESTSYNC_SPECS_DIR to a folder of *.yaml specs)",
                )
            ]
        )
    specs, errors = [], []
    for path in spec_files(directory):
        try:
            specs.append(load_spec_file(path))
        except SpecError as error:
            errors.append(error)
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.name in seen:
            errors.append(
                SpecError(
                    spec.path,
                    f"'{spec.name}' is already the name of {seen[spec.name].name}",
                    key="name",
                )
            )
        seen.setdefault(spec.name, spec.path)
    if errors:
        raise SpecValidationError(errors)
    return specs


def load_spec_file(path: Path | str) -> SourceSpec:
    """Read one YAML spec file into a validated `SourceSpec`."""
    path = Path(path)
    try:
        raw, lines = _read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(path, f"invalid YAML{where}: {problem}") from None
    except OSError as error:
        raise SpecError(path, f"cannot read file: {error.strerror}") from None
    return parse_spec(raw, path, lines)


def parse_spec(raw: Any, path: Path, lines: list[int | None] | None = None) -> SourceSpec:
    """Validate an already parsed spec mapping (the YAML document) into a `SourceSpec`.

    `lines[i]` is the line of the file where `resources[i]` is declared (see `_read_yaml`).
    """
    return _SpecParser(raw, Path(path), lines or []).parse()


def _read_yaml(text: str) -> tuple[Any, list[int | None]]:
    """The YAML document, and the 1-based line of each item of its `resources` list.

    One parse: the node tree is composed (it keeps the marks), then constructed.
    """
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: list[int | None] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "resources" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return raw, lines


# --------------------------------------------------------------------------- the parser


class _SpecParser:
    def __init__(self, raw: Any, path: Path, lines: list[int | None]):
        self.raw = raw
        self.path = path
        self.lines = lines

    def fail(self, message: str, *, resource: str | None = None, key: str = "") -> SpecError:
        return SpecError(self.path, message, resource=resource, key=key)

    # -- top level -------------------------------------------------------------------------

    def parse(self) -> SourceSpec:
        raw = self.raw
        if not isinstance(raw, dict):
            raise self.fail("a spec must be a mapping with name, client and resources")
        unknown = set(raw) - set(TOP_LEVEL_KEYS)
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(f"unknown key; {allowed(TOP_LEVEL_KEYS)}", key=key)
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise self.fail(
                f"must be snake_case (lowercase letters, digits, _), got {name!r}", key="name"
            )
        client = self._mapping(raw.get("client"), "client", required=True)
        unknown = set(client) - set(CLIENT_KEYS)
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(f"unknown key; {allowed(CLIENT_KEYS)}", key=f"client.{key}")
        base_url = client.get("base_url")
        if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
            raise self.fail(f"must be an http(s) URL, got {base_url!r}", key="client.base_url")
        auth = self._auth(client.get("auth"), "client.auth")
        client_handler = self._error_handler_fields(
            client.get("error_handler"), "client.error_handler"
        )
        defaults = self._mapping(raw.get("resource_defaults"), "resource_defaults")
        default_handler = self._error_handler_fields(
            defaults.get("error_handler"), "resource_defaults.error_handler"
        )
        resources_raw = raw.get("resources")
        if not isinstance(resources_raw, list) or not resources_raw:
            raise self.fail("must be a non-empty list of resources", key="resources")
        merged = [self._merge_defaults(defaults, r, i) for i, r in enumerate(resources_raw)]
        names = [r["name"] for r in merged]
        self.resource_lines = dict(zip(names, self.lines, strict=False))
        self.owners = self._owners(raw.get("owners"), None)
        self.tags = self._tags(raw.get("tags"), None)
        for i, n in enumerate(names):
            if n in names[:i]:
                raise self.fail("duplicate resource name", resource=n, key="name")
        bindings = {r["name"]: self._bindings(r, names) for r in merged}
        parents = _Lineage(bindings, self)
        carried = parents.carried_fields()
        resources = self._inherit_partitions(
            self._resource(
                r,
                handler_layers=(client_handler, default_handler),
                bindings=bindings[r["name"]],
                parent=parents.parent(r["name"]),
                carried=carried,
                lineage=parents,
            )
            for r in parents.ordered(merged)
        )
        return SourceSpec(
            name=name,
            path=self.path,
            base_url=base_url.rstrip("/"),
            auth=auth,
            client_headers=dict(client.get("headers") or {}),
            client_paginator=self._client_paginator(client.get("paginator")),
            resources=resources,
            description=raw.get("description"),
            schedule=self._schedule(raw.get("schedule")),
            concurrency=self._concurrency(client.get("concurrency", 1)),
            error_handler=self._error_handler([client_handler], "client"),
            secret_keys=self._secret_keys(client, merged),
        )

    def _mapping(
        self, value: Any, key: str, *, required: bool = False, resource: str | None = None
    ) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail("must be a mapping", resource=resource, key=key)
        return value

    # -- client ----------------------------------------------------------------------------

    def _auth(
        self, auth: Any, key: str, resource: str | None = None
    ) -> OAuth2AuthSpec | dict | None:
        if auth is None:
            return None
        if isinstance(auth, str):
            auth = {"type": auth}
        if not isinstance(auth, dict):
            raise self.fail("must be a mapping with a type", resource=resource, key=key)
        kind = auth.get("type", "bearer")
        if kind not in AUTH_TYPES:
            raise self.fail(
                f"unknown auth type {kind!r}; {allowed(AUTH_TYPES)}",
                resource=resource,
                key=f"{key}.type",
            )
        for secret in (*SECRET_AUTH_KEYS, "token", "api_key", "password"):
            if secret in auth:
                raise self.fail(
                    "secrets never live in YAML: remove it and set the env var or .dlt/secrets.toml",
                    resource=resource,
                    key=f"{key}.{secret}",
                )
        if kind == "oauth2":
            return self._model(OAuth2AuthSpec, auth, key, resource)
        assert kind in DLT_AUTH_TYPES
        return dict(auth)

    def _secret_keys(self, client: dict, resources: list[dict]) -> tuple[str, ...]:
        """Every `{secret: <name>}` value of the client's headers and each endpoint's
        headers and params: the secret is read at run time from `<NAME>_<NAME OF SECRET>`."""
        keys: list[str] = []
        places = [(None, "client.headers", client.get("headers"))]
        for r in resources:
            for where in ("headers", "params"):
                places.append((r["name"], f"endpoint.{where}", r["endpoint"].get(where)))
        for resource, where, values in places:
            if not isinstance(values, dict):
                continue
            for name, value in values.items():
                if isinstance(value, dict) and "secret" in value:
                    key = value["secret"]
                    if (
                        set(value) != {"secret"}
                        or not isinstance(key, str)
                        or not NAME_RE.match(key)
                    ):
                        raise self.fail(
                            "a secret value is {secret: <snake_case name>}, read from the env var "
                            "<SPEC NAME>_<NAME> or .dlt/secrets.toml",
                            resource=resource,
                            key=f"{where}.{name}",
                        )
                    keys.append(key)
        return tuple(dict.fromkeys(keys))

    def _concurrency(self, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_CONCURRENCY
        ):
            raise self.fail(
                f"must be a whole number of parallel requests from 1 to {MAX_CONCURRENCY}, got {value!r}",
                key="client.concurrency",
            )
        return value

    def _client_paginator(self, paginator: Any) -> Any:
        if paginator is None:
            return None
        return self._paginator(paginator, "client.paginator", None)

    def _model(self, model: type[BaseModel], value: dict, key: str, resource: str | None) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as error:
            message, full_key = _pydantic_message(error, key)
            raise self.fail(message, resource=resource, key=full_key) from None

    # -- resources -------------------------------------------------------------------------

    def _merge_defaults(self, defaults: dict, resource: Any, index: int) -> dict:
        """Merge `resource_defaults` into a resource the way dlt does (params and json deep)."""
        if isinstance(resource, str):
            resource = {"name": resource, "endpoint": {"path": resource}}
        if not isinstance(resource, dict):
            raise self.fail("must be a mapping or a resource name", key=f"resources[{index}]")
        name = resource.get("name")
        if not isinstance(name, str) or not RESOURCE_NAME_RE.match(name):
            raise self.fail(
                f"must be a name of letters, digits and _ (it becomes the table and asset name), got {name!r}",
                key=f"resources[{index}].name",
            )
        endpoint = resource.get("endpoint", {"path": name})
        if isinstance(endpoint, str):
            endpoint = {"path": endpoint}
        endpoint = self._mapping(endpoint, "endpoint", resource=name)
        default_endpoint = defaults.get("endpoint") or {}
        if isinstance(default_endpoint, str):
            default_endpoint = {"path": default_endpoint}
        merged_endpoint = {**deepcopy(default_endpoint), **deepcopy(endpoint)}
        for deep in ("params", "json"):
            if deep in endpoint and deep in default_endpoint:
                merged_endpoint[deep] = {**default_endpoint[deep], **endpoint[deep]}
        merged_endpoint.setdefault("path", name)
        merged = {
            **deepcopy({k: v for k, v in defaults.items() if k != "endpoint"}),
            **deepcopy(resource),
        }
        merged["endpoint"] = merged_endpoint
        if "error_handler" in resource:
            merged["error_handler"] = resource["error_handler"]
        return merged

    def _bindings(self, resource: dict, names: list[str]) -> tuple[Binding, ...]:
        name = resource["name"]
        endpoint = resource["endpoint"]
        unknown = set(endpoint) - set(ENDPOINT_KEYS)
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(
                f"unknown endpoint key; {allowed(ENDPOINT_KEYS)}",
                resource=name,
                key=f"endpoint.{key}",
            )
        path = endpoint.get("path")
        if not isinstance(path, str):
            raise self.fail("must be a string", resource=name, key="endpoint.path")
        params = self._mapping(endpoint.get("params"), "endpoint.params", resource=name)
        bindings: list[Binding] = []
        for param, value in params.items():
            if isinstance(value, dict) and value.get("type") == "resolve":
                target, fld = value.get("resource"), value.get("field")
                self._check_target(target, names, name, f"endpoint.params.{param}.resource")
                if not isinstance(fld, str) or not fld:
                    raise self.fail(
                        "must name a field of the parent",
                        resource=name,
                        key=f"endpoint.params.{param}.field",
                    )
                bindings.append(Binding(param, target, fld))
            elif isinstance(value, dict) and value.get("type") not in (None, "incremental"):
                raise self.fail(
                    f"unknown param type {value.get('type')!r}; {allowed(('resolve', 'incremental'))}",
                    resource=name,
                    key=f"endpoint.params.{param}.type",
                )
        bound = {b.placeholder for b in bindings}
        for placeholder in PLACEHOLDER_RE.findall(path):
            if placeholder in bound or placeholder.startswith("incremental."):
                continue
            if placeholder.startswith("resources."):
                parts = placeholder.split(".", 2)
                if len(parts) != 3:
                    raise self.fail(
                        f"{{{placeholder}}} must look like {{resources.<resource>.<field>}}",
                        resource=name,
                        key="endpoint.path",
                    )
                self._check_target(parts[1], names, name, "endpoint.path")
                bindings.append(Binding(placeholder, parts[1], parts[2]))
                continue
            target = _infer_parent(placeholder, names, name)
            if target is None:
                raise self.fail(
                    f"placeholder {{{placeholder}}} is not bound: bind it with "
                    f"{{resources.<parent>.<field>}} in the path or "
                    f"params.{placeholder}: {{type: resolve, resource: <parent>, field: <field>}}; "
                    f"resources: {', '.join(n for n in names if n != name)}",
                    resource=name,
                    key="endpoint.path",
                )
            bindings.append(Binding(placeholder, target, "id"))
        for where in ("params", "json", "data", "headers"):
            for expr in PLACEHOLDER_RE.findall(_strings(endpoint.get(where))):
                if expr.startswith("resources."):
                    parts = expr.split(".", 2)
                    if len(parts) == 3:
                        self._check_target(parts[1], names, name, f"endpoint.{where}")
                        bindings.append(Binding(expr, parts[1], parts[2]))
        return tuple(bindings)

    def _check_target(self, target: Any, names: list[str], resource: str, key: str) -> None:
        if target == resource:
            raise self.fail("a resource cannot be its own parent", resource=resource, key=key)
        if target not in names:
            raise self.fail(
                f"unknown resource {target!r}; {allowed(n for n in names if n != resource)}",
                resource=resource,
                key=key,
            )

    def _resource(
        self,
        raw: dict,
        *,
        handler_layers: tuple[dict, dict],
        bindings: tuple[Binding, ...],
        parent: str | None,
        carried: dict[str, list[str]],
        lineage: _Lineage,
    ) -> ResourceSpec:
        name = raw["name"]
        endpoint = dict(raw["endpoint"])
        paginator = self._paginator(endpoint.pop("paginator", None), "endpoint.paginator", name)
        selector = endpoint.get("data_selector")
        if selector is not None:
            selector = self._selector(selector, name)
            endpoint["data_selector"] = selector
        if "auth" in endpoint:
            endpoint["auth"] = self._auth(endpoint["auth"], "endpoint.auth", name)
        endpoint["params"] = self._bound_params(endpoint, bindings, parent, lineage)
        endpoint["path"] = self._bound_path(endpoint["path"], bindings, parent, lineage)
        handler = self._error_handler(
            [
                *handler_layers,
                self._error_handler_fields(raw.get("error_handler"), "error_handler", name),
            ],
            name,
        )
        columns = self._columns(raw.get("schema"), name)
        include = tuple(
            dict.fromkeys([*(raw.get("include_from_parent") or []), *carried.get(name, [])])
        )
        if include and parent is None:
            raise self.fail(
                "include_from_parent needs a parent resource",
                resource=name,
                key="include_from_parent",
            )
        write_disposition = raw.get("write_disposition", "append")
        if isinstance(write_disposition, str) and write_disposition not in (
            "append",
            "merge",
            "replace",
            "skip",
        ):
            raise self.fail(
                f"unknown write disposition {write_disposition!r}; {allowed(('append', 'merge', 'replace', 'skip'))}",
                resource=name,
                key="write_disposition",
            )
        primary_key = raw.get("primary_key")
        if isinstance(primary_key, list):
            primary_key = tuple(primary_key)
        hints = {
            k: v
            for k, v in raw.items()
            if k
            not in (
                "name",
                "endpoint",
                "include_from_parent",
                "primary_key",
                "write_disposition",
                *EXTENSION_RESOURCE_KEYS,
            )
        }
        operations = self._operations(raw, name)
        spec = ResourceSpec(
            **operations,
            owners=tuple(dict.fromkeys([*self.owners, *self._owners(raw.get("owners"), name)])),
            tags={**self.tags, **self._tags(raw.get("tags"), name)},
            line=self.resource_lines.get(name),
            name=name,
            endpoint=endpoint,
            paginator=paginator,
            data_selector=selector,
            primary_key=primary_key,
            write_disposition=write_disposition,
            error_handler=handler,
            columns=columns,
            parent=parent,
            bindings=bindings,
            include_from_parent=include,
            hints=hints,
        )
        self._check_with_dlt(spec)
        return spec

    def _paginator(self, paginator: Any, key: str, resource: str | None) -> Any:
        if paginator is None:
            return None
        if isinstance(paginator, str):
            if paginator not in PAGINATOR_TYPES:
                raise self.fail(
                    f"unknown paginator {paginator!r}; {allowed(PAGINATOR_TYPES)}",
                    resource=resource,
                    key=key,
                )
            return paginator
        if not isinstance(paginator, dict):
            raise self.fail(
                "must be a paginator name or a mapping with a type", resource=resource, key=key
            )
        kind = paginator.get("type")
        if kind not in PAGINATOR_TYPES:
            raise self.fail(
                f"unknown paginator type {kind!r}; {allowed(PAGINATOR_TYPES)}",
                resource=resource,
                key=f"{key}.type",
            )
        if kind == "cursor" and "cursor_value" in paginator:
            spec = self._model(TemplatedCursorPaginatorSpec, paginator, key, resource)
            for field_name in ("cursor_value", "stop_condition"):
                template = getattr(spec, field_name)
                if template is not None:
                    self._template(template, resource, f"{key}.{field_name}")
            return spec
        if kind == "offset" and not ({"offset_body_path", "limit_body_path"} & set(paginator)):
            return self._model(OffsetPaginatorSpec, paginator, key, resource)
        return dict(paginator)

    def _template(self, template: str, resource: str | None, key: str) -> None:
        from restsync_assets.http.templates import TemplateError, compile_template

        try:
            compile_template(template)
        except TemplateError as error:
            raise self.fail(str(error), resource=resource, key=key) from None

    def _selector(self, selector: Any, resource: str) -> str:
        if not isinstance(selector, str) or not selector:
            raise self.fail(
                "must be a JSONPath string such as data or results[*]",
                resource=resource,
                key="endpoint.data_selector",
            )
        try:
            normalized = normalize_selector(selector)
            compile_jsonpath(selector)
            compile_jsonpath(normalized)
        except Exception as error:  # jsonpath-ng raises several exception types
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self.fail(
                f"{selector!r} is not valid JSONPath ({detail}); e.g. data, results[*], organizations.*.organization",
                resource=resource,
                key="endpoint.data_selector",
            ) from None
        return normalized

    def _error_handler_fields(self, value: Any, key: str, resource: str | None = None) -> dict:
        fields = self._mapping(value, key, resource=resource)
        if fields:
            self._model(ErrorHandler, fields, key, resource)
        return fields

    def _error_handler(self, layers: list[dict], resource: str) -> ErrorHandler:
        merged: dict = {}
        for layer in layers:
            merged.update(layer)
        return self._model(ErrorHandler, merged, "error_handler", resource)

    def _columns(self, schema: Any, resource: str) -> tuple[Column, ...]:
        if schema is None:
            return ()
        if not isinstance(schema, dict):
            raise self.fail(
                "must map field names to a type or {type, nullable}",
                resource=resource,
                key="schema",
            )
        columns = []
        for field_name, decl in schema.items():
            key = f"schema.{field_name}"
            if isinstance(decl, str):
                decl = {"type": decl}
            if not isinstance(decl, dict):
                raise self.fail(
                    "must be a type name or {type, nullable}", resource=resource, key=key
                )
            unknown = set(decl) - {"type", "nullable"}
            if unknown:
                raise self.fail(
                    f"unknown key {sorted(unknown)[0]!r}; {allowed(('nullable', 'type'))}",
                    resource=resource,
                    key=key,
                )
            kind = decl.get("type")
            if kind not in COLUMN_TYPES:
                raise self.fail(
                    f"unknown type {kind!r}; {allowed(COLUMN_TYPES)}",
                    resource=resource,
                    key=f"{key}.type",
                )
            nullable = decl.get("nullable", True)
            if not isinstance(nullable, bool):
                raise self.fail("must be true or false", resource=resource, key=f"{key}.nullable")
            columns.append(Column(str(field_name), COLUMN_TYPES[kind], nullable))
        return tuple(columns)

    # -- catalog: owners and tags -------------------------------------------------------------

    def _owners(self, value: Any, resource: str | None) -> list[str]:
        """`owners: [...]`: email addresses or `team:` names, as Dagster requires."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(
                "must be a list of owners (emails or team:<name>)", resource=resource, key="owners"
            )
        for index, owner in enumerate(value):
            if not isinstance(owner, str) or not _dagster_accepts(owners=[owner]):
                raise self.fail(
                    f"{owner!r} is not an owner; allowed: an email address (jane@example.com)"
                    " or a team name prefixed with team: (team:data-eng)",
                    resource=resource,
                    key=f"owners[{index}]",
                )
        return value

    def _tags(self, value: Any, resource: str | None) -> dict[str, str]:
        """`tags: {key: value}`: Dagster's strict tags (short names, string values)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("must map tag names to string values", resource=resource, key="tags")
        for tag, tag_value in value.items():
            if not isinstance(tag, str) or not TAG_KEY_RE.match(tag) or tag.startswith("dagster/"):
                raise self.fail(
                    f"{tag!r} is not a tag name; allowed: 1-63 letters, digits, _ - . with an"
                    " optional prefix/ of the same (not dagster/)",
                    resource=resource,
                    key="tags",
                )
            if not isinstance(tag_value, str) or not _dagster_accepts(tags={tag: tag_value}):
                raise self.fail(
                    f"{tag_value!r} is not a tag value; allowed: a string of up to 63 letters,"
                    " digits, _ - . (quote numbers and booleans)",
                    resource=resource,
                    key=f"tags.{tag}",
                )
        return dict(value)

    # -- operations: partitions, freshness, checks, schedules --------------------------------

    def _inherit_partitions(self, resources: Iterable[ResourceSpec]) -> tuple[ResourceSpec, ...]:
        """A child is fetched per parent row, so it shares its parent's partitioning."""
        by_name: dict[str, ResourceSpec] = {}
        for resource in resources:  # parents come first
            if resource.parent is not None:
                inherited = by_name[resource.parent].partitions
                if resource.partitions is not None and resource.partitions != inherited:
                    raise self.fail(
                        f"a child shares its parent's partitions; remove it or partition '{resource.parent}' the same way",
                        resource=resource.name,
                        key="partitions",
                    )
                resource = replace(resource, partitions=inherited)
            by_name[resource.name] = resource
        return tuple(by_name.values())

    def _operations(self, raw: dict, name: str) -> dict[str, Any]:
        partitions = raw.get("partitions")
        if partitions is not None:
            partitions = self._model(
                PartitionsSpec,
                self._mapping(partitions, "partitions", resource=name),
                "partitions",
                name,
            )
            self._check_partition_start(partitions, name)
        freshness = raw.get("freshness")
        max_lag = warn_lag = None
        if freshness is not None:
            if isinstance(freshness, (str, int)):
                freshness = {"max_lag": freshness}
            freshness = self._model(
                FreshnessSpec,
                self._mapping(freshness, "freshness", resource=name),
                "freshness",
                name,
            )
            max_lag = self._lag(freshness.max_lag, name, "freshness.max_lag")
            if freshness.warn_lag is not None:
                warn_lag = self._lag(freshness.warn_lag, name, "freshness.warn_lag")
        checks = self._model(
            ChecksSpec, self._mapping(raw.get("checks"), "checks", resource=name), "checks", name
        )
        return {
            "partitions": partitions,
            "freshness": freshness,
            "max_lag_seconds": max_lag,
            "warn_lag_seconds": warn_lag,
            "checks": checks,
            "automation": self._automation(raw.get("automation_condition"), name),
        }

    def _check_partition_start(self, partitions: PartitionsSpec, resource: str) -> None:
        from datetime import datetime

        try:
            datetime.fromisoformat(partitions.start)
        except ValueError:
            raise self.fail(
                f"{partitions.start!r} is not an ISO date such as 2026-01-01",
                resource=resource,
                key="partitions.start",
            ) from None

    def _lag(self, value: str | int, resource: str, key: str) -> float:
        if isinstance(value, int):
            return float(value * 60)
        match = LAG_RE.match(value)
        if not match:
            raise self.fail(
                f"{value!r} is not a duration such as 90s, 30m, 6h, 2d, 1w (a bare number means minutes)",
                resource=resource,
                key=key,
            )
        return float(match.group(1)) * LAG_UNITS[match.group(2)]

    def _automation(self, value: Any, resource: str) -> AutomationSpec | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value not in ("eager", "on_missing"):
                raise self.fail(
                    f"unknown automation condition {value!r}; allowed: eager, on_missing, {{on_cron: <cron>}}",
                    resource=resource,
                    key="automation_condition",
                )
            return AutomationSpec(kind=value)
        if isinstance(value, dict) and set(value) == {"on_cron"}:
            self._cron(value["on_cron"], resource, "automation_condition.on_cron")
            return AutomationSpec(kind="on_cron", cron=value["on_cron"])
        raise self.fail(
            "must be eager, on_missing or {on_cron: <cron>}",
            resource=resource,
            key="automation_condition",
        )

    def _schedule(self, value: Any) -> ScheduleSpec | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = {"cron": value}
        schedule = self._model(ScheduleSpec, self._mapping(value, "schedule"), "schedule", None)
        self._cron(schedule.cron, None, "schedule.cron")
        return schedule

    def _cron(self, cron: Any, resource: str | None, key: str) -> None:
        from croniter import croniter

        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise self.fail(
                f"{cron!r} is not a cron expression such as '0 6 * * *'", resource=resource, key=key
            )

    # -- bindings into dlt's syntax --------------------------------------------------------

    def _bound_params(self, endpoint: dict, bindings, parent, lineage: _Lineage) -> dict:
        params = dict(endpoint.get("params") or {})
        for b in bindings:
            if b.placeholder.startswith("resources."):
                continue
            params[b.placeholder] = {
                "type": "resolve",
                "resource": parent,
                "field": lineage.field_on_parent(b, parent),
            }
        return params

    def _bound_path(self, path: str, bindings, parent, lineage: _Lineage) -> str:
        for b in bindings:
            if b.placeholder.startswith("resources.") and b.resource != parent:
                path = path.replace(
                    "{" + b.placeholder + "}",
                    "{resources." + f"{parent}.{lineage.field_on_parent(b, parent)}" + "}",
                )
        return path

    def _check_with_dlt(self, spec: ResourceSpec) -> None:
        """Validate what restsync hands to dlt with dlt's own `EndpointResource` checker."""
        from dlt.common.exceptions import DictValidationException
        from dlt.common.validation import validate_dict
        from dlt.sources.rest_api.typing import EndpointResource

        candidate = dict(spec.hints)
        candidate.update(
            name=spec.name, endpoint=dict(spec.endpoint), write_disposition=spec.write_disposition
        )
        if spec.primary_key is not None:
            candidate["primary_key"] = (
                list(spec.primary_key_columns)
                if not isinstance(spec.primary_key, str)
                else spec.primary_key
            )
        if isinstance(spec.paginator, (dict, str)):
            candidate["endpoint"]["paginator"] = spec.paginator
        if isinstance(candidate["endpoint"].get("auth"), OAuth2AuthSpec):
            candidate["endpoint"].pop("auth")
        try:
            validate_dict(EndpointResource, candidate, path=".")
        except DictValidationException as error:
            key, message = _dlt_message(error)
            raise self.fail(message, resource=spec.name, key=key) from None


class _Lineage:
    """Parent of each resource (dlt allows one) and the ancestor keys carried down to it."""

    def __init__(self, bindings: dict[str, tuple[Binding, ...]], parser: _SpecParser):
        self.bindings = bindings
        self.parser = parser
        self._parents: dict[str, str | None] = {}
        for name in bindings:
            self.parent(name)

    def parent(self, name: str, visiting: tuple[str, ...] = ()) -> str | None:
        if name in self._parents:
            return self._parents[name]
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise self.parser.fail(
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
            raise self.parser.fail(
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

    def path_down(self, ancestor: str, parent: str) -> list[str]:
        """Resources from just below `ancestor` down to `parent`, top first."""
        chain = [parent, *self.ancestors(parent)]
        return list(reversed(chain[: chain.index(ancestor)]))

    def field_on_parent(self, binding: Binding, parent: str) -> str:
        """The field of `parent`'s rows that holds the bound value (carried down if needed)."""
        if binding.resource == parent:
            return binding.field
        from dlt.sources.rest_api.config_setup import make_parent_key_name

        owner, fld = binding.resource, binding.field
        for resource in self.path_down(binding.resource, parent):
            owner, fld = resource, make_parent_key_name(owner, fld)
        return fld

    def carried_fields(self) -> dict[str, list[str]]:
        """Fields each resource must take from its parent (`include_from_parent`) for descendants."""
        carried: dict[str, list[str]] = {}
        for name, bindings in self.bindings.items():
            parent = self._parents[name]
            for b in bindings:
                if b.resource == parent:
                    continue
                owner, fld = b.resource, b.field
                for resource in self.path_down(b.resource, parent):
                    carried.setdefault(resource, []).append(fld)
                    from dlt.sources.rest_api.config_setup import make_parent_key_name

                    owner, fld = resource, make_parent_key_name(owner, fld)
        return carried

    def ordered(self, resources: list[dict]) -> list[dict]:
        """Parents before children, otherwise in file order."""
        depth = {name: len(self.ancestors(name)) for name in self.bindings}
        return sorted(resources, key=lambda r: depth[r["name"]])


# --------------------------------------------------------------------------- helpers


def _dagster_accepts(**attributes: Any) -> bool:
    """Whether Dagster accepts these asset attributes (`owners`, `tags`): its own rules decide."""
    from dagster import AssetSpec, DagsterInvalidDefinitionError

    try:
        AssetSpec("restsync_validation", **attributes)
    except DagsterInvalidDefinitionError:
        return False
    return True


@lru_cache(maxsize=1)
def _jsonpath_parser() -> Any:
    """dlt's JSONPath dialect (jsonpath-ng's extended parser), built once: building one takes ~40 ms."""
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

    return ExtendedJsonPathParser()


@lru_cache(maxsize=4096)
def compile_jsonpath(path: str) -> Any:
    """A JSONPath in dlt's dialect, parsed once per distinct path."""
    return _jsonpath_parser().parse(path)


def normalize_selector(selector: str) -> str:
    """Give `*` its RFC 9535 meaning (array elements and object members) under jsonpath-ng.

    Before jsonpath-ng 1.16, `a.*.b` only walked object members, so
    `organizations.*.organization` found nothing in `{"organizations": [{"organization":
    {...}}]}`; there we select both ways. Newer jsonpath-ng already walks both.
    """
    if ".*" not in selector or _star_walks_arrays():
        return selector
    as_array = re.sub(r"\.\*(?=\.|$)", "[*]", selector)
    return f"({as_array}) | ({selector})"


@lru_cache(maxsize=1)
def _star_walks_arrays() -> bool:
    """Whether the installed jsonpath-ng's `.*` selects array elements (probed once)."""
    return [m.value for m in compile_jsonpath("a.*").find({"a": [1]})] == [1]


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


def _strings(value: Any) -> str:
    if isinstance(value, str):
        return value + " "
    if isinstance(value, Mapping):
        return "".join(_strings(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "".join(_strings(v) for v in value)
    return ""


def _pydantic_message(error: ValidationError, base_key: str) -> tuple[str, str]:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    key = f"{base_key}.{loc}" if loc else base_key
    kind = first["type"]
    if kind == "extra_forbidden":
        model_fields = _allowed_fields(error)
        return f"unknown key; {allowed(model_fields)}" if model_fields else "unknown key", key
    if kind == "missing":
        return "is required", key
    return first["msg"].replace("Value error, ", ""), key


def _allowed_fields(error: ValidationError) -> Iterable[str]:
    title = error.title
    for model in (OAuth2AuthSpec, OffsetPaginatorSpec, TemplatedCursorPaginatorSpec, ErrorHandler):
        if model.__name__ == title:
            return model.model_fields
    return ()


def _dlt_message(error: Exception) -> tuple[str, str]:
    """The deepest, most specific line of dlt's nested `DictValidationException`."""
    while getattr(error, "nested_exceptions", None):
        error = max(error.nested_exceptions, key=lambda e: len(getattr(e, "path", "")))
    path = re.sub(
        r"^resources\[\d+\]\.?", "", getattr(error, "path", ".").strip("./").replace("/", ".")
    )
    field = getattr(error, "field", "") or ""
    msg = getattr(error, "msg", str(error)).splitlines()[0]
    unexpected = re.match(r"received unexpected fields `\{'([^']+)'", msg)
    if unexpected:
        from dlt.sources.rest_api.typing import EndpointResource

        expected = getattr(error, "expected_type", None) or EndpointResource
        keys = set(getattr(expected, "__required_keys__", ())) | set(
            getattr(expected, "__optional_keys__", ())
        )
        field = unexpected.group(1)
        msg = f"unknown key; {allowed(keys | set(EXTENSION_RESOURCE_KEYS))}"
    key = ".".join(p for p in (path, field) if p)
    return key, f"{msg} (dlt rest_api)"
