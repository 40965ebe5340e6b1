"""The converted streams assembled into one restsync spec, written and checked by restsync's
own loader (a stream restsync refuses is dropped with the loader's line as the reason)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from restsync_assets.importers.airbyte.build import StreamBuild
from restsync_assets.importers.airbyte.config import Config, read_config, secret_fields
from restsync_assets.importers.airbyte.errors import ImportFailed, Unsupported
from restsync_assets.importers.airbyte.manifest import read_manifest
from restsync_assets.importers.airbyte.streams import convert_stream

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Imported:
    """What an import produced: the spec, the streams it dropped, and what the spec reads."""

    name: str
    spec: dict[str, Any]
    header: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def env_vars(self) -> list[str]:
        """`<NAME>_<SECRET>` of every `{secret: ...}` in the spec, in order."""
        return [f"{self.name.upper()}_{s.upper()}" for s in dict.fromkeys(_secrets(self.spec))]

    def text(self) -> str:
        body = yaml.safe_dump(self.spec, sort_keys=False, allow_unicode=True, width=100)
        lines = [*self.header, *(f"  {var}" for var in self.env_vars)]
        lines += [f"{stream}: {note}" for stream, notes in self.notes.items() for note in notes]
        return "".join(f"# {line}\n" for line in lines) + body


def _secrets(node: Any) -> list[str]:
    if isinstance(node, dict):
        if set(node) == {"secret"}:
            return [node["secret"]]
        return [s for v in node.values() for s in _secrets(v)]
    if isinstance(node, list):
        return [s for v in node for s in _secrets(v)]
    return []


def import_manifest(manifest: Path, config_path: Path | None, name: str) -> Imported:
    """Convert the manifest's streams into a spec named `name` (not yet written)."""
    if not NAME.match(name):
        raise ImportFailed(f"--name {name!r}: a spec name is snake_case (letters, digits, _)")
    document = read_manifest(manifest)
    connection = (document.get("spec") or {}).get("connection_specification") or {}
    config = Config(read_config(config_path), secret_fields(connection))
    builds: dict[str, StreamBuild] = {}
    imported = Imported(name, {}, _header(manifest, document))
    for stream in document["streams"]:
        stream_name = stream.get("name") if isinstance(stream, dict) else None
        if not stream_name:
            raise ImportFailed(f"{manifest}: a stream without a name")
        try:
            builds[stream_name] = convert_stream(stream, config, manifest.parent)
        except Unsupported as reason:
            imported.dropped[stream_name] = str(reason)
    _drop_orphans(builds, imported)
    imported.spec = _assemble(name, builds, imported)
    return imported


def _header(manifest: Path, document: dict) -> list[str]:
    version = document.get("version", "unknown")
    return [
        f"Imported by `restsync import airbyte` from the Airbyte manifest {manifest.name}"
        f" (manifest version {version}).",
        "Secrets ({secret: ...}) are read at run time from these env vars:",
    ]


def _drop_orphans(builds: dict[str, StreamBuild], imported: Imported) -> None:
    changed = True
    while changed:
        changed = False
        for name, build in list(builds.items()):
            parent = build.resource.get("_parent")
            if parent and parent not in builds:
                reason = imported.dropped.get(parent, "it is not among the manifest's streams")
                imported.dropped[name] = f"its parent stream {parent} is not imported ({reason})"
                del builds[name]
                changed = True


def _assemble(name: str, builds: dict[str, StreamBuild], imported: Imported) -> dict[str, Any]:
    if not builds:
        return {}
    base_url = Counter(b.base_url for b in builds.values()).most_common(1)[0][0]
    auths = [b.auth for b in builds.values() if b.base_url == base_url]
    client_auth = next((a for a in auths if a is not None), None)
    resources = []
    for stream, build in list(builds.items()):
        reason = _placement(build, base_url, client_auth)
        if reason:
            imported.dropped[stream] = reason
            del builds[stream]
            continue
        resource = {k: v for k, v in build.resource.items() if k != "_parent"}
        if build.auth is not None and build.auth != client_auth:
            resource["endpoint"]["auth"] = build.auth
        resources.append(resource)
        if build.notes:
            imported.notes[stream] = build.notes
    client: dict[str, Any] = {"base_url": base_url}
    if client_auth is not None:
        client["auth"] = client_auth
    return {"name": name, "client": client, "resources": resources}


def _placement(build: StreamBuild, base_url: str | None, client_auth: Any) -> str | None:
    if build.base_url != base_url:
        return (
            f"url_base {build.base_url} differs from the spec's {base_url} (one base URL per spec)"
        )
    if build.auth is not None and build.auth != client_auth and build.auth.get("type") == "oauth2":
        return "a second OAuth authenticator (restsync: one oauth2 per spec)"
    if build.auth is None and client_auth is not None:
        build.loss("sent with the spec's auth (the manifest sends this stream without one)")
    return None
