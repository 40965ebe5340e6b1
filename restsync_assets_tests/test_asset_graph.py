"""The asset graph built from the seed specs: keys, deps, groups, kinds (snapshot), and what
loading the definitions does not do (no secrets needed, no network, no dlt source, no run
time)."""

from __future__ import annotations

import json
import os
import sys

from .snapshots import ASSET_GRAPH, seed_asset_graph
from .support import SEED_SPECS, use_specs


def test_asset_graph_matches_snapshot():
    """The seed specs' asset graph equals `snapshots/asset_graph.json` (regenerated only by
    hand: `python -m restsync_assets_tests.snapshots`)."""
    assert seed_asset_graph() == json.loads(ASSET_GRAPH.read_text())


def test_nineteen_assets_grouped_by_spec_with_parent_edges():
    """19 assets, each in its spec's group, and exactly the parent -> child edges of the seeds."""
    graph = seed_asset_graph()["assets"]
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


#: Imports `restsync_assets.definitions` in a fresh process where every socket connect or
#: name lookup is refused and recorded, and every dlt source or pipeline built is recorded;
#: prints what happened as JSON.
LOAD_DEFINITIONS = """
import json, socket, sys

attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args))
    raise OSError("no network while loading definitions")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse

from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

built = []

def recording(cls):
    original = cls.__init__

    def init(self, *args, **kwargs):
        built.append(cls.__name__)
        original(self, *args, **kwargs)

    cls.__init__ = init

recording(DltSource)
recording(Pipeline)

import restsync_assets.definitions as definitions

print(json.dumps({
    "assets": len(list(definitions.defs.resolve_all_asset_keys())),
    "network": attempts,
    "built": built,
    "runtime": sorted(m for m in sys.modules if m.startswith("restsync_assets.runtime")),
}))
"""


def test_definitions_module_loads_without_secrets_or_network(commands, monkeypatch):
    """`restsync_assets.definitions` loads all 19 assets in a fresh process with no secret
    set, without one socket connect or name lookup, without building a dlt source or
    pipeline, and without importing any of the run time (`restsync_assets.runtime`; the
    template compiler spec validation uses is `restsync_assets.specs.templates`)."""
    for key in list(os.environ):
        if key.endswith(("_CLIENT_ID", "_CLIENT_SECRET", "_REFRESH_TOKEN", "_TOKEN", "_API_KEY")):
            monkeypatch.delenv(key)
    use_specs(monkeypatch, SEED_SPECS)
    load = commands([sys.executable, "-c", LOAD_DEFINITIONS])
    assert load.finish() == 0, load.text
    loaded = json.loads(load.text.strip().splitlines()[-1])
    assert loaded["assets"] == 19
    assert loaded["network"] == []
    assert loaded["built"] == []
    assert loaded["runtime"] == [], loaded["runtime"]
