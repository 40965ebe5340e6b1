"""Read an Airbyte manifest with Airbyte's own CDK; print each record as a JSON line.

Run by the Python of a venv with `airbyte-cdk` (RESTSYNC_AIRBYTE_PYTHON), never imported by
restsync's tests: `python airbyte_cdk_read.py MANIFEST CONFIG.json OUT.jsonl [MANIFEST
CONFIG.json OUT.jsonl ...]` reads each manifest (every stream) and writes
`{"stream": ..., "data": {...}}` per record to its OUT.jsonl (the CDK logs to stdout
itself); it exits non-zero when a stream failed. One process for all manifests: importing
the CDK takes seconds.
"""

from __future__ import annotations

import json
import logging
import sys

import yaml
from airbyte_cdk.models import (
    AirbyteStream,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)

try:  # the CDK's declarative reader: ManifestDeclarativeSource up to CDK 6, then the concurrent one
    from airbyte_cdk.sources.declarative.manifest_declarative_source import (
        ManifestDeclarativeSource as DeclarativeSource,
    )
except ImportError:
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
        ConcurrentDeclarativeSource as DeclarativeSource,
    )

#: seconds between the CDK's polls of an async job (its own is 5 s, a constant of the class):
#: the sandbox's jobs finish in a poll or two, so the tests need not wait 5 s per poll
ASYNC_POLL_SECONDS = 0.2


def short_async_polls() -> None:
    """The CDK's async job orchestrator polls every `ASYNC_POLL_SECONDS` (when it has one)."""
    try:
        from airbyte_cdk.sources.declarative.async_job.job_orchestrator import (
            AsyncJobOrchestrator,
        )
    except ImportError:
        return
    AsyncJobOrchestrator._WAIT_TIME_BETWEEN_STATUS_UPDATE_IN_SECONDS = ASYNC_POLL_SECONDS


def catalog(names: list[str]) -> ConfiguredAirbyteCatalog:
    streams = [
        ConfiguredAirbyteStream(
            stream=AirbyteStream(
                name=n, json_schema={}, supported_sync_modes=[SyncMode.full_refresh]
            ),
            sync_mode=SyncMode.full_refresh,
            destination_sync_mode=DestinationSyncMode.overwrite,
        )
        for n in names
    ]
    return ConfiguredAirbyteCatalog(streams=streams)


def _definition(manifest: dict, ref: str) -> dict:
    node = manifest
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def main(manifest_path: str, config_path: str, out_path: str) -> int:
    with open(manifest_path) as f:
        manifest = yaml.safe_load(f)
    with open(config_path) as f:
        config = json.load(f)
    names = [s["name"] for s in manifest["streams"] if isinstance(s, dict) and "name" in s]
    names += [_definition(manifest, s)["name"] for s in manifest["streams"] if isinstance(s, str)]
    source = DeclarativeSource(source_config=manifest, config=config, catalog=catalog(names))
    failed = False
    with open(out_path, "w") as out:
        for message in source.read(logging.getLogger("airbyte"), config, catalog(names), None):
            if message.type == Type.RECORD:
                record = message.record
                out.write(
                    json.dumps({"stream": record.stream, "data": record.data}, default=str) + "\n"
                )
            elif message.type == Type.TRACE and message.trace.error is not None:
                print(message.trace.error.message, file=sys.stderr)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    short_async_polls()
    codes = [main(*args[i : i + 3]) for i in range(0, len(args), 3)]
    sys.exit(max(codes, default=2))
