"""Snapshots the tests compare with, and how they are made.

`asset_graph.json` is the asset graph of the seed specs (`test_asset_graph.py`). The test
never writes it: after a deliberate change to the graph, regenerate it by hand with
`python -m restsync_assets_tests.snapshots` and review the diff before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

ASSET_GRAPH = Path(__file__).with_name("asset_graph.json")


def graph_of(defs) -> dict:
    """Every asset of `defs` (group, deps, kinds, op, partitions, freshness, checks, owners,
    tags, code references) and every
    schedule, as plain JSON-ready data."""
    checks = {}
    for checks_def in defs.asset_checks:
        for key in checks_def.check_keys:
            checks.setdefault("/".join(key.asset_key.path), []).append(key.name)
    graph = {}
    for assets_def in defs.assets:
        partitions = assets_def.partitions_def
        for spec in assets_def.specs:
            key = "/".join(spec.key.path)
            graph[key] = {
                "group": spec.group_name,
                "deps": sorted("/".join(d.asset_key.path) for d in spec.deps),
                "kinds": sorted(spec.kinds),
                "op": assets_def.node_def.name,
                "partitions": str(partitions) if partitions else None,
                "freshness_fail_window_s": (
                    spec.freshness_policy.fail_window.to_timedelta().total_seconds()
                    if spec.freshness_policy
                    else None
                ),
                "checks": sorted(checks.get(key, [])),
                "owners": list(spec.owners),
                "tags": {k: v for k, v in spec.tags.items() if not k.startswith("dagster/kind/")},
                "code_references": [
                    f"{Path(r.file_path).name}:{r.line_number}"
                    for r in spec.metadata["dagster/code_references"].code_references
                ],
            }
    schedules = {}
    for schedule in defs.schedules:
        schedules[schedule.name] = getattr(schedule, "cron_schedule", "from partitions")
    return {"assets": dict(sorted(graph.items())), "schedules": dict(sorted(schedules.items()))}


def seed_asset_graph() -> dict:
    """The asset graph of the seed specs (`source_specs/`)."""
    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_specs

    from ..support import SEED_SPECS

    return graph_of(build_definitions(load_specs(SEED_SPECS)))


def write_snapshots() -> None:
    """Regenerate every snapshot from the current code (run by hand, never by a test)."""
    ASSET_GRAPH.write_text(json.dumps(seed_asset_graph(), indent=2) + "\n")
    print(f"wrote {ASSET_GRAPH}")
