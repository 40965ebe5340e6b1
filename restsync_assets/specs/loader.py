"""Read `source_specs/*.yaml`, merge `resource_defaults`, bind placeholders, validate once.

This is the only module that reads YAML. It turns each file into a `SourceSpec` or raises a
`SpecError` whose message is one line naming the file, the resource and the key.
"""

from __future__ import annotations

import re
import string
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
    AUTH_MODELS,
    AUTH_TYPES,
    COLUMN_TYPES,
    PAGINATOR_TYPES,
    SECRET_AUTH_KEYS,
    AuthSpec,
    AutomationSpec,
    Binding,
    ChecksSpec,
    ChildCursorSpec,
    Column,
    ErrorHandler,
    FreshnessSpec,
    OffsetPaginatorSpec,
    PartitionsSpec,
    ResourceSpec,
    ScheduleSpec,
    SourceSpec,
    TemplatedCursorPaginatorSpec,
)
from restsync_assets.specs.token_urls import TOKEN_URL_RULE, is_secure_token_url

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
#: headers whose literal value is a secret: these names, or a name containing a word below
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
SECRET_HEADER_WORDS = ("key", "token", "secret")


#: The key of each auth type's token endpoint (client secrets are sent there).
TOKEN_URL_KEYS = {"oauth2": "token_url", "oauth2_client_credentials": "access_token_url"}
#: placeholder prefixes dlt fills itself (`{resources.<parent>.<field>}`, `{incremental.start_value}`)
CONTEXTS = ("resources.", "incremental.")
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
        self.name = "<name>"  # the spec's name once known (the env-var prefix of its secrets)
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
        self.name = name
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
        defaults = self._defaults(raw.get("resource_defaults"))
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
        found = {r["name"]: self._bindings(r, names) for r in merged}
        bindings = {n: b for n, (b, _) in found.items()}
        for n, (_, unbound) in found.items():
            if unbound:
                raise self._unbound_error(n, unbound[0], bindings)
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
            secret_keys=self._secret_keys(client, defaults, merged, auth, resources),
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

    def _auth(self, auth: Any, key: str, resource: str | None = None) -> AuthSpec | None:
        """`client.auth` (or `endpoint.auth`): an auth type whose secrets are `{secret: <name>}`."""
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
        if kind == "oauth2" and resource is not None:
            raise self.fail(
                "restsync's oauth2 token is shared by every resource of the source: set it on client.auth",
                resource=resource,
                key=f"{key}.type",
            )
        for field_name in (*SECRET_AUTH_KEYS, "username"):
            value = auth.get(field_name)
            if field_name not in auth or (field_name == "username" and not isinstance(value, dict)):
                continue  # a user name may be written in the YAML
            if not _is_secret_ref(value):
                raise self._literal_secret(f"{key}.{field_name}", field_name, resource)
            self._secret_name(value, f"{key}.{field_name}", resource)
        self._token_url(auth, kind, key, resource)
        return self._model(AUTH_MODELS[kind], {**auth, "type": kind}, key, resource)

    def _token_url(self, auth: dict, kind: str, key: str, resource: str | None) -> None:
        """Client secrets are sent to the token URL: https, or plain http on a loopback host."""
        name = TOKEN_URL_KEYS.get(kind)
        url = auth.get(name) if name else None
        if url is not None and not (isinstance(url, str) and is_secure_token_url(url)):
            raise self.fail(f"{url!r} {TOKEN_URL_RULE}", resource=resource, key=f"{key}.{name}")

    def _secret_keys(
        self,
        client: dict,
        defaults: dict,
        resources: list[dict],
        auth: AuthSpec | None,
        specs: Iterable[ResourceSpec],
    ) -> tuple[str, ...]:
        """Every secret read at run time from `<NAME>_<NAME OF SECRET>`: the auth's secrets and
        each `{secret: <name>}` of the client's headers and each endpoint's headers and params.

        A literal value of a header that carries credentials (`Authorization`, `Cookie`, a
        name with `key`, `token` or `secret` in it) fails: it would be a secret in the YAML.
        """
        keys = [
            ref.secret
            for a in (auth, *(s.endpoint.get("auth") for s in specs))
            if a is not None
            for ref in a.secret_refs().values()
        ]
        endpoint_defaults = defaults.get("endpoint")
        places = [
            (None, "client.headers", client.get("headers")),
            (
                None,
                "resource_defaults.endpoint.headers",
                endpoint_defaults.get("headers") if isinstance(endpoint_defaults, dict) else None,
            ),
        ]
        for r in resources:
            for where in ("headers", "params"):
                places.append((r["name"], f"endpoint.{where}", r["endpoint"].get(where)))
        for resource, where, values in places:
            if not isinstance(values, dict):
                continue
            for name, value in values.items():
                key = f"{where}.{name}"
                if _is_secret_ref(value):
                    keys.append(self._secret_name(value, key, resource))
                elif where.endswith("headers") and _secret_header(name) and value not in (None, ""):
                    raise self._literal_secret(key, _snake(str(name)), resource)
        return tuple(dict.fromkeys(keys))

    def _secret_name(self, value: dict, key: str, resource: str | None) -> str:
        """The name of a `{secret: <name>}` value (checked)."""
        name = value.get("secret")
        if set(value) != {"secret"} or not isinstance(name, str) or not NAME_RE.match(name):
            raise self.fail(
                "a secret value is {secret: <snake_case name>}, read from the env var "
                "<SPEC NAME>_<NAME> or .dlt/secrets.toml",
                resource=resource,
                key=key,
            )
        return name

    def _literal_secret(self, key: str, secret: str, resource: str | None) -> SpecError:
        """A secret written in the YAML: say how to write it instead."""
        return self.fail(
            f"secrets never live in YAML: write {{secret: {secret}}} and set "
            f"{self.name.upper()}_{secret.upper()} (or sources.{self.name}.{secret} in "
            ".dlt/secrets.toml)",
            resource=resource,
            key=key,
        )

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
        """`resource_defaults` merged into a resource exactly as dlt's `rest_api` merges them.

        The resource is normalized as dlt normalizes it (a string is a name and path, a string
        endpoint is a path, a missing path is the resource's name: never the defaults'), then
        merged by dlt's own function: the resource's keys win, `endpoint.params` and
        `endpoint.json` merge one level deep, `columns` merge column by column.
        """
        # dlt's own function (private, but the one `rest_api_source` runs), so restsync merges
        # exactly as the installed dlt does; the parity tests break if it ever changes
        from dlt.sources.rest_api.config_setup import _merge_resource_endpoints

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
        resource = deepcopy(resource)
        endpoint = resource.get("endpoint", {})
        if isinstance(endpoint, str):
            endpoint = {"path": endpoint}
        endpoint = self._mapping(endpoint, "endpoint", resource=name)
        endpoint.setdefault("path", name)
        resource["endpoint"] = self._deep_merged_keys(endpoint, "endpoint", name)
        return _merge_resource_endpoints(deepcopy(defaults), resource)

    def _deep_merged_keys(self, endpoint: dict, key: str, resource: str | None = None) -> dict:
        """`endpoint` with its `params` and `json` (the keys dlt merges one level deep) checked
        to be mappings; an empty one (`params:` with no value) counts as absent."""
        for deep in ("params", "json"):
            if deep in endpoint and endpoint[deep] is None:
                endpoint.pop(deep)
            elif deep in endpoint:
                self._mapping(endpoint[deep], f"{key}.{deep}", resource=resource)
        return endpoint

    def _defaults(self, raw: Any) -> dict:
        """`resource_defaults`, checked where dlt's merge needs mappings."""
        defaults = deepcopy(self._mapping(raw, "resource_defaults"))
        if defaults.get("endpoint") is not None:
            key = "resource_defaults.endpoint"
            defaults["endpoint"] = self._deep_merged_keys(
                self._mapping(defaults["endpoint"], key), key
            )
        return defaults

    def _bindings(self, resource: dict, names: list[str]) -> tuple[tuple[Binding, ...], list[str]]:
        """The resource's bindings to parent fields, and its path placeholders nothing binds.

        Plain params named in the path are filled in first, as dlt does (`_bind_plain_params`).
        """
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
        path = self._bind_plain_params(name, endpoint)
        in_path = self._template_fields(path, name, "endpoint.path")
        for b in bindings:
            if b.placeholder not in in_path:
                raise self.fail(
                    f"resolve param {b.placeholder} is not in the path (dlt binds resolve params "
                    f"in the path only); for a query param use {b.placeholder}: "
                    f'"{{resources.{b.resource}.{b.field}}}"',
                    resource=name,
                    key=f"endpoint.params.{b.placeholder}",
                )
        bound = {b.placeholder for b in bindings}
        unbound: list[str] = []
        for placeholder in in_path:
            if placeholder in bound or placeholder.startswith("incremental."):
                continue
            if placeholder.startswith("resources."):
                bindings.append(self._resources_binding(placeholder, names, name, "endpoint.path"))
                continue
            target = _infer_parent(placeholder, names, name)
            if target is None:
                unbound.append(placeholder)
            else:
                bindings.append(Binding(placeholder, target, "id"))
        for where in ("params", "json", "data", "headers"):
            key = f"endpoint.{where}"
            for expr in self._template_fields(endpoint.get(where), name, key):
                if expr.startswith("resources."):
                    bindings.append(self._resources_binding(expr, names, name, key))
                elif not expr.startswith("incremental."):
                    raise self.fail(
                        f"{{{expr}}} is not a placeholder dlt fills here: use "
                        "{resources.<parent>.<field>} or {incremental.start_value} (with an "
                        "incremental); write a literal { or } as {{ or }}",
                        resource=name,
                        key=key,
                    )
        return tuple(bindings), unbound

    def _resources_binding(self, expr: str, names: list[str], resource: str, key: str) -> Binding:
        parts = expr.split(".", 2)
        if len(parts) != 3 or not all(parts):
            raise self.fail(
                f"{{{expr}}} must look like {{resources.<resource>.<field>}}",
                resource=resource,
                key=key,
            )
        self._check_target(parts[1], names, resource, key)
        return Binding(expr, parts[1], parts[2])

    def _bind_plain_params(self, resource: str, endpoint: dict) -> str:
        """Fill path placeholders from plain params and take those params out of the query,
        as dlt's `_bind_path_params` does: `orgs/{org}/repos` with `params: {org: acme}`
        requests `orgs/acme/repos`, without an `org` query param. Returns the path."""
        path, params = endpoint["path"], endpoint.get("params") or {}
        segments, used = [], set()
        for literal, field_name, _, _ in self._format_parse(path, resource, "endpoint.path"):
            segments.append(_escape(literal))
            if not field_name:
                continue
            value = params.get(field_name)
            if (
                field_name.startswith(CONTEXTS)
                or field_name not in params
                or (isinstance(value, dict) and value.get("type") == "resolve")
            ):
                segments.append("{" + field_name + "}")
                continue
            if isinstance(value, dict):
                raise self.fail(
                    f"{{{field_name}}} in the path takes a plain value or a resolve param, "
                    f"not {value!r}",
                    resource=resource,
                    key=f"endpoint.params.{field_name}",
                )
            segments.append(_escape(str(value)))
            used.add(field_name)
        if used:
            endpoint["path"] = "".join(segments)
            endpoint["params"] = {k: v for k, v in params.items() if k not in used}
        return endpoint["path"]

    def _format_parse(self, text: str, resource: str, key: str) -> list[tuple]:
        """`string.Formatter().parse(text)`: how dlt reads placeholders (`{{` is a literal `{`)."""
        try:
            return list(string.Formatter().parse(text))
        except ValueError as error:
            raise self.fail(
                f"{text!r}: {error}; write a literal {{ or }} as {{{{ or }}}}",
                resource=resource,
                key=key,
            ) from None

    def _template_fields(self, value: Any, resource: str, key: str) -> list[str]:
        """The `{placeholders}` of every string (and mapping key) in `value`, as dlt finds them."""
        if isinstance(value, Mapping):
            return [
                f
                for k, v in value.items()
                for f in (
                    *self._template_fields(k, resource, key),
                    *self._template_fields(v, resource, key),
                )
            ]
        if isinstance(value, (list, tuple)):
            return [f for item in value for f in self._template_fields(item, resource, key)]
        if isinstance(value, str):
            return [f for _, f, _, _ in self._format_parse(value, resource, key) if f]
        return []

    def _unbound_error(
        self, resource: str, placeholder: str, bindings: dict[str, tuple[Binding, ...]]
    ) -> SpecError:
        """Unbound path placeholder: how to bind it, and which resources could be its parent."""
        below = _descendants(resource, bindings)
        parents = [n for n in bindings if n != resource and n not in below]
        return self.fail(
            f"placeholder {{{placeholder}}} is not bound: give it a value with "
            f"params.{placeholder}: <value>, or bind it to a parent's field with "
            f"{{resources.<parent>.<field>}} in the path or "
            f"params.{placeholder}: {{type: resolve, resource: <parent>, field: <field>}}"
            + (f"; possible parents: {', '.join(parents)}" if parents else ""),
            resource=resource,
            key="endpoint.path",
        )

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
        if parent is not None:
            spec = replace(spec, cursor=self._child_cursor(endpoint, name))
        return spec

    def _child_cursor(self, endpoint: dict, resource: str) -> ChildCursorSpec | None:
        """A child's `incremental` (on the endpoint or a `type: incremental` param), which
        restsync keeps per parent row: only what makes sense per parent is allowed."""
        found = [
            (f"endpoint.params.{param}", value)
            for param, value in (endpoint.get("params") or {}).items()
            if isinstance(value, dict) and value.get("type") == "incremental"
        ]
        if isinstance(endpoint.get("incremental"), dict):
            found.append(("endpoint.incremental", endpoint["incremental"]))
        if not found:
            return None
        key, config = found[0]  # dlt, too, prefers the param
        func = config.get("last_value_func")
        if func not in (None, "max"):
            raise self.fail(
                f"a child's cursor is kept per parent row as the newest value seen; only"
                f" 'max' is supported on a child resource, got {func!r}",
                resource=resource,
                key=f"{key}.last_value_func",
            )
        if config.get("allow_external_schedulers"):
            raise self.fail(
                "not supported on a child resource (its cursor is kept per parent row);"
                " use partitions on the parent for scheduled windows",
                resource=resource,
                key=f"{key}.allow_external_schedulers",
            )
        cursor_path = config.get("cursor_path")
        if not isinstance(cursor_path, str) or not cursor_path:
            raise self.fail(
                "is required: the field of each child row that holds the cursor",
                resource=resource,
                key=f"{key}.cursor_path",
            )
        primary_key = config.get("primary_key")
        if primary_key is not None:
            primary_key = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key)
        return ChildCursorSpec(
            cursor_path=cursor_path,
            initial_value=config.get("initial_value"),
            end_value=config.get("end_value"),
            lag=config.get("lag"),
            range_start=config.get("range_start") or "closed",
            range_end=config.get("range_end") or "open",
            on_cursor_value_missing=config.get("on_cursor_value_missing") or "raise",
            row_order=config.get("row_order"),
            primary_key=primary_key,
        )

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
        from restsync_assets.runtime.http.templates import TemplateError, compile_template

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
        if isinstance(candidate["endpoint"].get("auth"), AuthSpec):
            candidate["endpoint"].pop("auth")  # restsync's model, validated by `_auth`
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


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and "secret" in value


def _secret_header(name: Any) -> bool:
    """Whether a header of that name carries credentials (its value must be a secret)."""
    lowered = str(name).lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in SECRET_HEADER_WORDS)


def _snake(name: str) -> str:
    """`X-Api-Key` -> `x_api_key`: the secret name suggested for a header."""
    snake = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return snake if NAME_RE.match(snake) else f"header_{snake}".rstrip("_")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


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
    models = (
        *AUTH_MODELS.values(),
        OffsetPaginatorSpec,
        TemplatedCursorPaginatorSpec,
        ErrorHandler,
    )
    for model in models:
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
