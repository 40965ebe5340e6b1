"""The user's CONFIG.json and the manifest's `spec`: which values are baked, which are secrets.

Every field marked `airbyte_secret` in `spec.connection_specification` (at any depth) is a
secret: it is never written into the spec, but read at run time as `{secret: <field>}`
(env var `<NAME>_<FIELD>`). Every other config value is baked into the spec as a literal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restsync_assets.importers.airbyte.errors import ImportFailed, Unsupported
from restsync_assets.specs.model import SecretRef

#: `config['a']['b']`, `config.a.b`, `config.get('a', default)`
_STEP = r"(?:\.(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\])"
CONFIG_REF = re.compile(
    r"\bconfig(?:\.get\(\s*['\"](?P<get>[^'\"]+)['\"]\s*(?:,\s*(?P<default>[^()]*))?\)"
    r"|(?P<steps>(?:" + _STEP + r")+))"
)
_STEPS = re.compile(_STEP)


def read_config(path: Path | None) -> dict[str, Any]:
    """CONFIG.json as a mapping (empty without one)."""
    if path is None:
        return {}
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ImportFailed(f"{path}: cannot read the config: {error}") from None
    if not isinstance(value, dict):
        raise ImportFailed(f"{path}: the config must be a JSON object")
    return value


def secret_fields(schema: Any) -> set[str]:
    """Names of every property marked `airbyte_secret` in a connection specification."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict) and prop.get("airbyte_secret"):
                found.add(name)
            found |= secret_fields(prop)
        for key in ("oneOf", "anyOf", "allOf"):
            for option in schema.get(key) or []:
                found |= secret_fields(option)
        found |= secret_fields(schema.get("items"))
    return found


@dataclass
class Config:
    """The config values, which of them are secrets, and the secrets a spec ends up reading."""

    values: dict[str, Any]
    secrets: set[str]
    #: secret name -> why the spec reads it (the config field)
    used_secrets: dict[str, str] = field(default_factory=dict)

    def path_of(self, match: re.Match[str]) -> tuple[list[str], str | None]:
        if match.group("get"):
            return [match.group("get")], match.group("default")
        steps = [a or b for a, b in _STEPS.findall(match.group("steps"))]
        return steps, None

    def is_secret(self, match: re.Match[str]) -> bool:
        steps, _ = self.path_of(match)
        return steps[-1] in self.secrets

    def secret(self, match: re.Match[str]) -> SecretRef:
        """The `{secret: <field>}` a secret config reference becomes (and note it is read)."""
        steps, _ = self.path_of(match)
        name = re.sub(r"\W", "_", steps[-1]).lower()
        self.used_secrets[name] = ".".join(steps)
        return SecretRef(secret=name)

    def value(self, match: re.Match[str]) -> Any:
        """The baked value of a non-secret config reference."""
        steps, default = self.path_of(match)
        node: Any = self.values
        for step in steps:
            if isinstance(node, dict) and step in node:
                node = node[step]
                continue
            if default is not None:
                return _literal(default)
            raise Unsupported(
                f"config field {'.'.join(steps)} is not in CONFIG.json (Airbyte reads it as"
                " empty; restsync bakes only the values given)"
            )
        return node

    def secret_ref(self, name: str) -> SecretRef:
        """A secret restsync's auth needs whatever the manifest marks (e.g. an OAuth client id)."""
        self.used_secrets[name] = name
        return SecretRef(secret=name)


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise Unsupported(f"config default {text.strip()!r} is not a literal") from None
