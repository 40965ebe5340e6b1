"""The asset graph built from the seed specs: keys, deps, groups, kinds (snapshot)."""

from __future__ import annotations

import json
import os
import time

from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

from .conftest import REPO, SEED_SPECS

SNAPSHOT = REPO / "restsync_assets_tests" / "snapshots" / "asset_graph.json"


def graph_of(defs) -> dict:
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
            }
    schedules = {}
    for schedule in defs.schedules:
        schedules[schedule.name] = getattr(schedule, "cron_schedule", "from partitions")
    return {"assets": dict(sorted(graph.items())), "schedules": dict(sorted(schedules.items()))}


def test_asset_graph_matches_snapshot():
    graph = graph_of(build_definitions(load_specs(SEED_SPECS)))
    if os.environ.get("RESTSYNC_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(graph, indent=2) + "\n")
    assert graph == json.loads(SNAPSHOT.read_text())


def test_nineteen_assets_grouped_by_spec_with_parent_edges():
    graph = graph_of(build_definitions(load_specs(SEED_SPECS)))["assets"]
    assert len(graph) == 19
    assert all(key.split("/")[0] == node["group"] for key, node in graph.items())
    edges = {(dep, key) for key, node in graph.items() for dep in node["deps"]}
    assert edges == {
        ("marketing_api/organizations", "marketing_api/adaccounts"),
        ("marketing_api/adaccounts", "marketing_api/creatives"),
        ("marketing_api/adaccounts", "marketing_api/ads"),
        ("native_ads/accounts", "native_ads/audiences"),
        ("native_ads/accounts", "native_ads/campaigns"),
        ("native_ads/accounts", "native_ads/audience_rules"),
        ("native_ads/accounts", "native_ads/conversion_rules"),
        ("native_ads/campaigns", "native_ads/motion_ads"),
        ("native_ads/campaigns", "native_ads/campaign_items"),
    }


def test_definitions_module_loads_without_secrets_or_network(monkeypatch):
    for key in list(os.environ):
        if key.endswith(("_CLIENT_ID", "_CLIENT_SECRET", "_REFRESH_TOKEN")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(SEED_SPECS))
    import importlib

    import restsync_assets.definitions as module

    started = time.perf_counter()
    module = importlib.reload(module)
    assert len(list(module.defs.resolve_all_asset_keys())) == 19
    assert time.perf_counter() - started >= 0  # load succeeded; speed is measured in benchmarks/
