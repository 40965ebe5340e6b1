"""`restsync_assets.RestSyncComponent` in-process: scaffolding, the repo's defs, translation,
several components in one project, and the catalog metadata of the assets it builds."""

from __future__ import annotations

import shutil

import yaml
from dagster import (
    AssetKey,
    DagsterInstance,
    load_from_defs_folder,
    materialize,
)
from dagster.components.testing import create_defs_folder_sandbox

from restsync_assets import RestSyncComponent
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

from .snapshots import graph_of
from .support import REPO, SEED_SPECS, assert_table_equals_truth

TYPE = "restsync_assets.RestSyncComponent"


def check_keys(defs) -> set:
    return set(defs.resolve_asset_graph().asset_check_keys)


def component_yaml(specs_dir, **attributes) -> dict:
    return {"type": TYPE, "attributes": {"specs_dir": str(specs_dir), **attributes}}


def test_scaffold_writes_a_defs_yaml_and_a_starter_spec_that_loads():
    """`dg scaffold defs restsync_assets.RestSyncComponent my-api` (in-process): defs.yaml plus
    specs/my_api.yaml, which loads as the asset [my_api, items] with its checks."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(RestSyncComponent, defs_path="my-api")
        written = yaml.safe_load((path / "defs.yaml").read_text())
        assert written["attributes"] == {"specs_dir": "specs"}
        assert written["type"] == "restsync_assets.component.RestSyncComponent"  # as asked for
        (spec,) = load_specs(path / "specs")
        assert (spec.name, spec.path.name) == ("my_api", "my_api.yaml")
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, RestSyncComponent)
            assert list(defs.resolve_all_asset_keys()) == [AssetKey(["my_api", "items"])]
            checks = {k.name for k in check_keys(defs)}
            assert checks == {"primary_key", "row_count"}


def test_the_repo_defs_folder_is_the_seed_asset_graph():
    """The repo's dg project (restsync_assets/defs/) builds what `restsync_assets.definitions`
    builds from source_specs/: same assets, deps, groups, kinds, checks and schedules. (Both
    read the repo's own source_specs/, whatever specs the user added there.)"""
    dg_graph = graph_of(load_from_defs_folder(path_within_project=REPO / "restsync_assets"))
    graph = graph_of(build_definitions(load_specs(REPO / "source_specs")))
    for key, node in dg_graph["assets"].items():  # dg adds the defs.yaml as a code reference
        assert node.pop("code_references") == [
            *graph["assets"][key].pop("code_references"),
            "defs.yaml:2",
        ]
    assert dg_graph == graph


def test_standard_catalog_metadata_on_each_asset():
    """Each asset names its table (DuckDB: `<file stem>.<spec>.<resource>`), points at the spec
    file and the line that declares the resource, and lists the columns the spec declares."""
    spec = next(s for s in load_specs(SEED_SPECS) if s.name == "native_ads")
    defs = build_definitions([spec])
    asset = defs.resolve_assets_def(AssetKey(["native_ads", "campaigns"]))
    metadata = asset.specs_by_key[AssetKey(["native_ads", "campaigns"])].metadata
    (reference,) = metadata["dagster/code_references"].code_references
    assert reference.file_path == str(SEED_SPECS / "native_ads.yaml")
    lines = (SEED_SPECS / "native_ads.yaml").read_text().splitlines()
    assert lines[reference.line_number - 1].strip() == "- name: campaigns"
    assert metadata["dagster/table_name"].value.endswith(".native_ads.campaigns")
    assert "dagster/column_schema" not in metadata  # campaigns declares no schema

    ledger = next(s for s in load_specs(SEED_SPECS) if s.name == "ledger")
    key = AssetKey(["ledger", "resource_name"])
    declared = build_definitions([ledger]).resolve_assets_def(key).specs_by_key[key].metadata
    columns = declared["dagster/column_schema"].schema.columns
    assert [(c.name, c.type, c.constraints.nullable) for c in columns] == [
        ("id", "text", False),
        ("name", "text", True),
        ("active", "bool", True),
        ("created_at", "timestamp", True),
        ("updated_at", "timestamp", True),
    ]


TRANSLATION = {
    "key_prefix": ["raw"],
    "group_name": "{{ source.name }}_api",
    "owners": ["team:data-eng"],
    "tags": {"resource": "{{ resource.name }}"},
}


def test_translation_renames_keys_everywhere(tmp_path):
    """`translation: {key_prefix, group_name, owners, tags}`: every key prefixed, a child's
    dependency on its prefixed parent, checks and schedules on the prefixed keys."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            RestSyncComponent,
            defs_path="seeds",
            defs_yaml_contents=component_yaml(SEED_SPECS, translation=TRANSLATION),
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            keys = set(defs.resolve_all_asset_keys())
            assert len(keys) == 20 and all(k.path[0] == "raw" for k in keys)
            graph = defs.resolve_asset_graph()
            child = AssetKey(["raw", "marketing_api", "adaccounts"])
            assert graph.get(child).parent_keys == {
                AssetKey(["raw", "marketing_api", "organizations"])
            }
            node = graph.get(child)
            assert node.group_name == "marketing_api_api"
            assert node.owners == ["team:data-eng"]
            assert node.tags["resource"] == "adaccounts"
            assert {k.asset_key for k in check_keys(defs)} == keys
            job = defs.resolve_job_def("__anonymous_asset_job_ledger_schedule")
            assert set(job.asset_layer.selected_asset_keys) == {
                AssetKey(["raw", "ledger", "resource_name"])
            }


def test_translated_assets_materialize_and_pass_their_checks(sandbox_env, warehouse, tmp_path):
    """A prefixed parent and child load through dagster-dlt (it maps dlt resources to the
    translated keys) into tables equal to the API; their checks run on the prefixed keys."""
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(SEED_SPECS / "marketing_api.yaml", specs)
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            RestSyncComponent,
            defs_path="marketing",
            defs_yaml_contents=component_yaml(specs, translation={"key_prefix": ["raw"]}),
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            selection = [
                AssetKey(["raw", "marketing_api", "organizations"]),
                AssetKey(["raw", "marketing_api", "adaccounts"]),
            ]
            result = materialize(
                [*defs.assets, *defs.asset_checks],
                resources=defs.resources,
                selection=selection,
                instance=DagsterInstance.ephemeral(),
            )
    assert {e.asset_key for e in result.get_asset_materialization_events()} == set(selection)
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key for e in evaluations} == set(selection)
    assert all(e.passed for e in evaluations) and len(evaluations) == 6
    assert_table_equals_truth(sandbox_env, "marketing_api", "organizations")
    assert_table_equals_truth(sandbox_env, "marketing_api", "adaccounts")


def test_a_key_renamed_outright_loads_its_resource_and_logs_its_name(
    sandbox_env, warehouse, tmp_path
):
    """`translation: {key: "{{ source.name }}__{{ resource.name }}"}` renames a key so that its
    last part is not the resource's name: the run loads the resource's table, records its row
    count, and its log line names the resource (run time maps a key back to its resource
    through `restsync_assets.keys`, not through the key's last part)."""
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(SEED_SPECS / "marketing_api.yaml", specs)
    translation = {"key": "{{ source.name }}__{{ resource.name }}"}
    key = AssetKey(["marketing_api__organizations"])
    instance = DagsterInstance.ephemeral()
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            RestSyncComponent,
            defs_path="marketing",
            defs_yaml_contents=component_yaml(specs, translation=translation),
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            assert key in set(defs.resolve_all_asset_keys())
            result = materialize(
                defs.assets, resources=defs.resources, selection=[key], instance=instance
            )
    (event,) = result.get_asset_materialization_events()
    rows = event.event_specific_data.materialization.metadata["dagster/row_count"].value
    assert rows == len(sandbox_env.ids("marketing_api", "organizations"))
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith("marketing_api: loading organizations into") for m in messages), [
        m for m in messages if "loading" in m
    ]
    assert_table_equals_truth(sandbox_env, "marketing_api", "organizations")


def test_two_components_in_one_project(tmp_path):
    """Two folders of specs as two components: Dagster merges their definitions."""
    for name in ("ledger", "workspace_docs"):
        (tmp_path / name).mkdir()
        shutil.copy(SEED_SPECS / f"{name}.yaml", tmp_path / name)
    with create_defs_folder_sandbox() as sandbox:
        for name in ("ledger", "workspace_docs"):
            sandbox.scaffold_component(
                RestSyncComponent,
                defs_path=name,
                defs_yaml_contents=component_yaml(tmp_path / name),
            )
        with sandbox.build_all_defs() as defs:
            groups = {k.path[0] for k in defs.resolve_all_asset_keys()}
            assert groups == {"ledger", "workspace_docs"}
            assert len(list(defs.resolve_all_asset_keys())) == 5
