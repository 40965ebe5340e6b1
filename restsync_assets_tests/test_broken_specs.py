"""One bad spec stays one bad spec: the other specs' assets, checks and schedules still load
in Dagster, and the bad file is shown there as a stand-in asset listing its problems, while
`restsync validate` still fails on it."""

from __future__ import annotations

import json
import sys

from dagster import AssetKey

from restsync_assets.spec_problems import INVALID_ASSET

from .support import copy_seed_specs, use_specs, write_spec

#: a spec file with two problems (an unknown auth type, a resource without a path)
BROKEN = {
    "name": "broken",
    "client": {"base_url": "http://127.0.0.1:9/api", "auth": {"type": "magic"}},
    "resources": [{"name": "items", "endpoint": {"path": "items"}, "write_disposition": "nope"}],
}
BROKEN_LINES = [
    "client.auth.type: unknown auth type 'magic'; allowed: api_key, bearer, http_basic,"
    " oauth2, oauth2_client_credentials, session",
    "resource 'items': write_disposition: unknown write disposition 'nope'; allowed: append,"
    " merge, replace, skip",
]

LOAD = """
import json
from dagster import AssetKey
from restsync_assets.definitions import defs
graph = defs.resolve_asset_graph()
stand_in = graph.get(AssetKey(["broken", "spec_invalid"]))
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "schedules": sorted(s.name for s in defs.schedules or []),
    "checks": len(list(graph.asset_check_keys)),
    "description": stand_in.description,
}))
"""


def test_a_broken_spec_leaves_the_others_loaded_and_is_shown_in_dagster(
    tmp_path, monkeypatch, commands
):
    """With ledger and a broken spec, `restsync_assets.definitions` (a fresh process, as
    `dagster dev` loads it) has ledger's asset, checks and schedule, plus `broken/spec_invalid`
    whose description lists both problems of broken.yaml."""
    folder = copy_seed_specs(tmp_path / "specs", ["ledger"])
    write_spec(folder, BROKEN)
    use_specs(monkeypatch, folder)
    load = commands([sys.executable, "-c", LOAD])
    assert load.finish() == 0, load.text
    loaded = json.loads(load.text.strip().splitlines()[-1])
    assert loaded["assets"] == ["broken/spec_invalid", "ledger/resource_name"]
    assert loaded["schedules"], "ledger's schedule is still defined"
    assert loaded["checks"] > 0, "ledger's checks are still defined"
    assert "broken.yaml failed validation" in loaded["description"]
    for line in BROKEN_LINES:
        assert line in loaded["description"]


def test_restsync_validate_still_fails_on_the_broken_spec(tmp_path, monkeypatch, capsys):
    """The same folder: validate prints ledger's ok line and both problems, and exits 1."""
    from restsync_assets.cli import main

    monkeypatch.chdir(tmp_path)
    folder = copy_seed_specs(tmp_path / "specs", ["ledger"])
    write_spec(folder, BROKEN)
    assert main(["validate", "specs"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("ok  ledger.yaml: ledger")
    assert err.splitlines() == [f"specs/broken.yaml: {line}" for line in BROKEN_LINES]


def test_stand_in_asset_cannot_be_materialized(tmp_path):
    """The stand-in is an asset spec only (nothing runs it), keyed by the file's stem."""
    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import read_specs

    folder = tmp_path / "specs"
    write_spec(folder, BROKEN)
    specs, problems = read_specs(folder)
    assert specs == []
    graph = build_definitions(specs, problems).resolve_asset_graph()
    node = graph.get(AssetKey(["broken", INVALID_ASSET]))
    assert not node.is_executable
    assert node.group_name == "broken"
