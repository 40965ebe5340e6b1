"""An Airbyte declarative manifest read the way Airbyte's CDK reads one, before conversion.

Three passes over the YAML document, each in the CDK's spirit (not its code):

- references: `$ref: "#/definitions/x"` (merged under the sibling keys, which win) and a
  string `"#/definitions/x"` are replaced by the referenced node, recursively;
- parameters: a component's `$parameters` are passed down to every nested component (the
  nearer one wins), and a parameter named like a field the component leaves out fills it
  (this is how `name`, `path` or `primary_key` often reach a stream);
- `{{ parameters.x }}` / `{{ parameters['x'] }}` in strings are replaced by their values.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from restsync_assets.importers.airbyte.errors import ImportFailed

REF_PREFIX = "#/"
_PARAMETER = re.compile(
    r"parameters(?:\.(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\]|\.get\(\s*['\"](\w+)['\"]\s*(?:,\s*([^)]*))?\))"
)
_WHOLE_PARAMETER = re.compile(r"^\{\{\s*" + _PARAMETER.pattern + r"\s*\}\}$")
#: keys under which a mapping holds data, not components: parameters never flow into them
DATA_KEYS = ("schema", "connection_specification", "properties", "json_schema")
#: fields whose value is a component (or a list of them) even when its `type` is left out,
#: as Airbyte infers it from the field; parameters fill the fields such components leave out
COMPONENT_FIELDS = frozenset(
    {
        "streams",
        "retriever",
        "requester",
        "record_selector",
        "extractor",
        "record_filter",
        "paginator",
        "pagination_strategy",
        "page_token_option",
        "page_size_option",
        "authenticator",
        "error_handler",
        "error_handlers",
        "response_filters",
        "backoff_strategies",
        "partition_router",
        "parent_stream_configs",
        "stream",
        "incremental_sync",
        "start_time_option",
        "end_time_option",
        "start_value_option",
        "request_option",
        "schema_loader",
        "decoder",
        "transformations",
        "inject_into",
        "start_datetime",
        "end_datetime",
        "authenticators",
    }
)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at `path`, references resolved and parameters propagated."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ImportFailed(f"{path}: cannot read the manifest: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("streams"), list):
        raise ImportFailed(f"{path}: not an Airbyte declarative manifest (no `streams` list)")
    resolved = resolve_references(document, document)
    return propagate_parameters(resolved, {}, component=False)


def resolve_references(node: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`node` with every `$ref` and `"#/..."` string replaced by what it points to."""
    if isinstance(node, str) and node.startswith(REF_PREFIX):
        return resolve_references(_lookup(root, node, seen), root, (*seen, node))
    if isinstance(node, list):
        return [resolve_references(item, root, seen) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    if isinstance(node.get("$ref"), str):
        target = resolve_references(_lookup(root, node["$ref"], seen), root, (*seen, node["$ref"]))
        if not isinstance(target, dict):
            raise ImportFailed(f"$ref {node['$ref']} does not point to a mapping")
        out.update(copy.deepcopy(target))
    for key, value in node.items():
        if key != "$ref":
            out[key] = resolve_references(value, root, seen)
    return out


def _lookup(root: dict[str, Any], ref: str, seen: tuple[str, ...]) -> Any:
    if ref in seen:
        raise ImportFailed(f"$ref {ref} refers to itself")
    node: Any = root
    for part in ref.removeprefix(REF_PREFIX).split("/"):
        if not isinstance(node, dict) or part not in node:
            raise ImportFailed(f"$ref {ref}: no such definition")
        node = node[part]
    return node


def propagate_parameters(node: Any, inherited: dict[str, Any], component: bool = True) -> Any:
    """`node` with `$parameters` passed down and `{{ parameters.x }}` filled in. `component`:
    whether a mapping here is a component (by the field holding it) even without a `type`."""
    if isinstance(node, list):
        return [propagate_parameters(item, inherited, component) for item in node]
    if isinstance(node, str):
        return fill_parameters(node, inherited)
    if not isinstance(node, dict):
        return node
    own = node.get("$parameters") or {}
    parameters = {**inherited, **own} if isinstance(own, dict) else dict(inherited)
    is_component = component or "type" in node or "$parameters" in node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$parameters":
            continue
        if key in DATA_KEYS:
            out[key] = value
        elif key == "authenticators" and isinstance(value, dict):
            out[key] = {k: propagate_parameters(v, parameters) for k, v in value.items()}
        else:
            out[key] = propagate_parameters(value, parameters, key in COMPONENT_FIELDS)
    if is_component and isinstance(node.get("type", ""), str):
        for key, value in parameters.items():
            out.setdefault(key, value)
    return out


def fill_parameters(text: str, parameters: dict[str, Any]) -> Any:
    """`{{ parameters.x }}` alone gives the value itself; inside a longer template, its literal."""
    if "parameters" not in text:
        return text
    whole = _WHOLE_PARAMETER.match(text.strip())
    if whole:
        name = next(g for g in whole.groups()[:3] if g)
        if name in parameters:
            return parameters[name]

    def literal(match: re.Match[str]) -> str:
        name = next(g for g in match.groups()[:3] if g)
        if name not in parameters:
            return (match.group(3) and match.group(4)) or match.group(0)
        return repr(parameters[name])

    return _PARAMETER.sub(literal, text)
