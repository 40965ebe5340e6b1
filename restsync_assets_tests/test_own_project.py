"""restsync used from a project of one's own, and an API added to the specs folder.

Every file restsync writes by default (DuckDB warehouse, dlt pipelines, locks, rate budget,
refresh-token store, the demo's warehouse) lives under the user's project (`settings.
project_dir()`), never under the installed package; the command line, run in a `dg` project,
reads the specs of its `RestSyncComponent`s. `restsync demo` loads what the sandbox serves and
lists the other specs as skipped. (The wheel installed into a fresh venv, driven by `dg`:
test_wheel_project.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import restsync_assets
from restsync_assets import settings
from restsync_assets.cli import main
from restsync_assets.cli.demo import default_duckdb
from restsync_assets.component import DEFS_YAML, STARTER_SPEC
from restsync_assets.runtime.locks import lock_path
from restsync_assets.runtime.token_store import store_path
from restsync_assets.specs import load_specs

from .support import (
    STARTER_ITEMS,
    assert_table_equals_truth,
    assert_table_is,
    copy_seed_specs,
    starter_items_api,
    table_rows,
)

#: The folder the package is imported from (site-packages, or the checkout when editable)
PACKAGE_PARENT = Path(restsync_assets.__file__).resolve().parent.parent
#: restsync's settings of where files go: unset, the defaults are what is tested
PATH_SETTINGS = (
    "RESTSYNC_PROJECT_DIR",
    "RESTSYNC_SPECS_DIR",
    "RESTSYNC_DUCKDB_PATH",
    "RESTSYNC_PIPELINES_DIR",
    "RESTSYNC_DESTINATION",
    "RESTSYNC_RATE_LIMIT_URL",
    "RESTSYNC_TOKEN_STORE_URL",
)


@pytest.fixture
def no_path_settings(monkeypatch) -> None:
    for name in PATH_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class ProjectCase:
    name: str
    made: tuple[str, ...]  # files (or folders, ending in /) made under tmp_path
    cwd: str  # the working directory, under tmp_path
    env: str | None  # RESTSYNC_PROJECT_DIR, under tmp_path
    project: str  # the expected project folder, under tmp_path


PROJECT_CASES = [
    ProjectCase("pyproject", ("acme/pyproject.toml", "acme/src/acme/defs/"), "acme/src/acme/defs", None, "acme"),
    ProjectCase("dg-toml", ("ws/dg.toml", "ws/projects/"), "ws/projects", None, "ws"),
    ProjectCase("workspace-yaml", ("team/workspace.yaml", "team/a/b/"), "team/a/b", None, "team"),
    ProjectCase("source-specs", ("plain/source_specs/", "plain/notes/"), "plain/notes", None, "plain"),
    ProjectCase("nearest-wins", ("outer/pyproject.toml", "outer/inner/dg.toml"), "outer/inner", None, "outer/inner"),
    ProjectCase("env-wins", ("acme/pyproject.toml", "elsewhere/"), "acme", "elsewhere", "elsewhere"),
    ProjectCase("no-marker", ("bare/",), "bare", None, "bare"),
]  # fmt: skip


@pytest.mark.parametrize("case", PROJECT_CASES, ids=lambda c: c.name)
def test_the_project_folder_is_found_from_the_working_directory(
    case, tmp_path, monkeypatch, no_path_settings
):
    """The project is `RESTSYNC_PROJECT_DIR`, else the nearest folder up from the working
    directory holding pyproject.toml, dg.toml, workspace.yaml or source_specs/, else the
    working directory; the warehouse, dlt's pipelines, the demo's warehouse and the specs
    folder default to places under it."""
    for made in case.made:
        path = tmp_path / made
        if made.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    monkeypatch.chdir(tmp_path / case.cwd)
    if case.env is not None:
        monkeypatch.setenv("RESTSYNC_PROJECT_DIR", str(tmp_path / case.env))
    project = (tmp_path / case.project).resolve()
    assert settings.project_dir() == project
    assert settings.duckdb_path() == project / "data" / "restsync.duckdb"
    assert settings.pipelines_dir() == project / "data" / ".restsync_pipelines"
    assert default_duckdb() == project / "data" / "demo" / "restsync_demo.duckdb"
    assert settings.specs_dir() == project / "source_specs"


def test_a_run_writes_every_file_under_the_project_and_none_in_the_package(
    tmp_path, sandbox, monkeypatch, no_path_settings
):
    """`restsync run` in a project of one's own, nothing configured: the warehouse, dlt's
    pipeline state, the dataset lock, the rate budget and the OAuth refresh-token store are
    all under `<project>/data/`, the table equals the sandbox's, and the package's folder
    gained none of them."""

    def rate_limited(raw: dict) -> None:
        raw["client"]["rate_limit"] = {"requests": 1000, "per": "second"}

    project = tmp_path / "acme"
    copy_seed_specs(project / "source_specs", ["ledger"], edit=rate_limited)
    (project / "pyproject.toml").write_text('[project]\nname = "acme"\nversion = "0.1.0"\n')
    for key, value in sandbox.env(["ledger"]).items():
        monkeypatch.setenv(key, value)
    before = _restsync_files(PACKAGE_PARENT)
    monkeypatch.chdir(project / "source_specs")  # any folder of the project

    assert main(["run", "ledger", "--no-checks"]) == 0

    data = project / "data"
    (spec,) = load_specs(project / "source_specs")
    assert settings.duckdb_path() == data / "restsync.duckdb"
    assert (data / "restsync.duckdb").is_file()
    assert lock_path(spec).parent == data
    pipelines = data / ".restsync_pipelines"
    assert (pipelines / "ledger.rate_limit.json").is_file()
    assert store_path("ledger") == pipelines / "ledger.refresh_token"
    assert (pipelines / "ledger.refresh_token.lock").is_file()  # the token store's lock
    assert any(p.is_dir() for p in pipelines.iterdir())  # dlt's pipeline working folder
    assert_table_equals_truth(sandbox, "ledger", "resource_name")
    assert _restsync_files(PACKAGE_PARENT) == before


def _restsync_files(folder: Path) -> dict[str, float]:
    """What restsync's default paths would write under `folder`, with modification times."""
    data = folder / "data"
    found = [data / "restsync.duckdb", data / "restsync.duckdb.lock", data / "demo"]
    pipelines = data / ".restsync_pipelines"
    if pipelines.is_dir():
        found += list(pipelines.iterdir())
    return {str(p): p.stat().st_mtime for p in found if p.exists()}


def scaffold_dg_project(root: Path, component: str) -> Path:
    """A `dg` project (create-dagster's layout) at `root` with the component `component`
    scaffolded as `dg scaffold defs restsync_assets.RestSyncComponent <component>` writes it;
    returns the component's spec file."""
    (root / "pyproject.toml").parent.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "acme"\nversion = "0.1.0"\ndependencies = ["restsync"]\n\n'
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "acme"\n'
    )
    folder = root / "src" / "acme" / "defs" / component
    (folder / "specs").mkdir(parents=True)
    (folder / "defs.yaml").write_text(DEFS_YAML.format(type="restsync_assets.RestSyncComponent"))
    spec = folder / "specs" / f"{component}.yaml"
    spec.write_text(STARTER_SPEC.format(name=component, env=component.upper()))
    return spec


def test_the_cli_in_a_dg_project_reads_its_components_specs(
    tmp_path, monkeypatch, capsys, no_path_settings
):
    """Run in a `dg` project with a scaffolded `RestSyncComponent`, `restsync validate` checks
    the component's specs, the starter spec's own hint `restsync preview shop_api items`
    works, and `restsync run shop_api` loads into the project's `data/restsync.duckdb`."""
    project = tmp_path / "acme"
    starter = scaffold_dg_project(project, "shop_api")
    assert "`restsync preview shop_api items`" in starter.read_text()
    monkeypatch.chdir(project)

    assert main(["validate"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok  shop_api.yaml: shop_api (1 resource)"]
    with starter_items_api() as api:
        monkeypatch.setenv("SHOP_API_BASE_URL", api.url)
        assert main(["preview", "shop_api", "items"]) == 0
        shown = capsys.readouterr().out
        assert "shop_api/items: 2 records read in 1 request; the first 2:" in shown, shown
        assert main(["run", "shop_api"]) == 0
    assert settings.duckdb_path() == project / "data" / "restsync.duckdb"
    assert_table_is(table_rows("shop_api", "items"), STARTER_ITEMS)


def test_the_cli_outside_any_project_names_what_to_do(
    tmp_path, monkeypatch, capsys, no_path_settings
):
    """In a folder with no specs and no component, `restsync validate` fails in one line that
    names the folder it looked in and the settings that point elsewhere."""
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"source_specs: spec folder not found, and no RestSyncComponent defs.yaml under"
        f" {tmp_path} (run restsync in your project's folder, or set RESTSYNC_SPECS_DIR or"
        " RESTSYNC_PROJECT_DIR)"
    )


EXTRA_SPEC = """\
name: extra_api
client:
  base_url: https://api.example.com
resources:
  - name: items
    primary_key: id
    endpoint: {path: /v1/items, data_selector: data}
"""


def test_the_demo_skips_an_added_api_and_exits_0(tmp_path, warehouse, monkeypatch, capsys):
    """An API added to a specs folder (as "Adding an API" says; here beside the ledger seed,
    to keep the test short): `restsync demo` loads the seed spec the sandbox serves, lists the
    new one as skipped, and exits 0."""
    folder = copy_seed_specs(tmp_path / "source_specs", ["ledger"])
    (folder / "extra_api.yaml").write_text(EXTRA_SPEC)
    assert main(["demo", "--specs", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "-- extra_api: not served by the sandbox, skipped" in out.splitlines()
    assert "error:" not in out
    assert (
        "1/1 assets loaded and equal to the sandbox; skipped (not served by the sandbox):"
        " extra_api in "
    ) in out
