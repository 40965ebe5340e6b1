"""The resource one Airbyte stream becomes, while its components are converted into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from restsync_assets.importers.airbyte.errors import Unsupported
from restsync_assets.importers.airbyte.templates import Scope


@dataclass
class StreamBuild:
    """One stream being converted: the restsync resource so far, its auth, and its losses."""

    name: str
    scope: Scope
    resource: dict[str, Any] = field(default_factory=dict)
    #: the restsync auth mapping of the stream's requester (None: no auth)
    auth: dict[str, Any] | None = None
    base_url: str | None = None
    #: what the conversion could not keep exactly (`imported with a loss`)
    notes: list[str] = field(default_factory=list)
    #: an async job's window bounds as restsync Jinja expressions (`start`, `end`), when the
    #: stream has a datetime cursor
    window: dict[str, str] | None = None

    @property
    def endpoint(self) -> dict[str, Any]:
        return self.resource.setdefault("endpoint", {})

    def params(self) -> dict[str, Any]:
        return self.endpoint.setdefault("params", {})

    def loss(self, text: str) -> None:
        self.notes.append(text)


def component_type(node: Any, default: str | None = None) -> str:
    """A component's `type` (`default` when the manifest leaves it to the field's type)."""
    if not isinstance(node, dict):
        raise Unsupported(f"expected a component, got {node!r}")
    if node.get("class_name") or str(node.get("type", "")).startswith("Custom"):
        raise Unsupported(
            f"custom component {node.get('class_name') or node.get('type')} (Python code)"
        )
    kind = node.get("type", default)
    if kind is None:
        raise Unsupported(f"a component without a type: {sorted(node)}")
    return kind


def convert(
    table: dict[str, Any], node: Any, build: StreamBuild, what: str, default: str | None = None
) -> Any:
    """Convert `node` with the converter its type has in `table`, or drop the stream."""
    kind = component_type(node, default)
    converter = table.get(kind)
    if converter is None:
        raise Unsupported(f"{what}: {kind} has no restsync equivalent")
    return converter(node, build)
