"""The Commands table of docs/operations.md, run as written: every command in it is run here
as a subprocess.

`test_the_use_table_lists_exactly_the_commands_run_here` ties the table to this module, so a
command added to or changed in the table fails until a test runs it. Ports are the only
substitution (a free one instead of 8765 / Dagster's 3000).
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import time
import urllib.error
import urllib.request
from contextlib import suppress

import pytest
import yaml

from restsync_assets.sandbox import Sandbox
from restsync_assets.specs import load_specs

from .support import (
    BIN,
    PROCESS_TIMEOUT,
    REPO,
    SEED_SPECS,
    assert_table_equals_truth,
    check_results,
    copy_seed_specs,
    free_port,
    table_rows,
    use_specs,
)

TESTS = "pytest"
UI = "dagster dev"
VALIDATE = "restsync validate [DIR]"
CHECK = "restsync check [--duckdb PATH]"
SANDBOX = "restsync sandbox --port 8765"
IMPORT = "restsync import airbyte MANIFEST --config CONFIG.json --name NAME --out DIR"
MATERIALIZE = "dagster asset materialize -m restsync_assets.definitions --select 'partitions:none'"
MATERIALIZE_PARTITIONS = (
    "dagster asset materialize -m restsync_assets.definitions"
    " --select 'group:ad_analytics and partitions:time'"
    " --partition-range 2026-01-01...2026-01-07"
)
PARTITION_DAYS = {f"2026-01-0{day}" for day in range(1, 8)}


def loaded_checks() -> int:
    """The checks `restsync check` runs after both materialize commands: every check of each
    seed spec they load, i.e. with an asset without partitions (`reports`, whose one asset is
    partitioned by month, is never loaded, so not checked)."""
    from restsync_assets.checks import check_names

    specs = [s for s in load_specs(SEED_SPECS) if any(r.partitions is None for r in s.resources)]
    return sum(len(check_names(r)) for s in specs for r in s.resources)


def use_table() -> list[str]:
    """The command (first code span of the second column) of each row of docs/operations.md's
    `## Commands`."""
    page = (REPO / "docs" / "operations.md").read_text()
    section = page.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return [re.search(r"`([^`]+)`", row.split(" | ")[1]).group(1) for row in rows]


def argv(command: str, *args: object, port: int | None = None) -> list[str]:
    """The README command as a process's argv: `[DIR]` -> `args`, `--port N` -> `port`;
    an optional `[--duckdb PATH]` is left out (the configured warehouse)."""
    words = [w for w in shlex.split(command) if w not in ("[DIR]", "[--duckdb", "PATH]")]
    if port is not None and "--port" in words:
        words[words.index("--port") + 1] = str(port)
    return [str(BIN / words[0]), *words[1:], *map(str, args)]


def test_the_use_table_lists_exactly_the_commands_run_here() -> None:
    """The docs' `## Commands` table lists exactly the commands this module runs, in order."""
    assert use_table() == [
        TESTS,
        UI,
        VALIDATE,
        CHECK,
        SANDBOX,
        IMPORT,
        MATERIALIZE,
        MATERIALIZE_PARTITIONS,
    ]


def test_pytest_from_the_repo_root_finds_this_suite(commands) -> None:
    """`pytest` in the repo root collects the suite (collect only: this is the suite running)."""
    run = commands([*argv(TESTS), "--collect-only", "-q"], cwd=REPO)
    assert run.finish() == 0, run.text
    assert "test_readme_commands.py::test_pytest_from_the_repo_root_finds_this_suite" in run.text


def test_validate_passes_the_seeds_and_names_file_key_and_rule_of_a_bad_spec(
    commands, tmp_path, monkeypatch
) -> None:
    """`restsync validate` with no DIR says `ok` for each seed spec; on a folder with a bad
    spec it exits 1 printing one line: the file, the key and the rule."""
    monkeypatch.delenv("RESTSYNC_SPECS_DIR", raising=False)
    seeds = commands(argv(VALIDATE), cwd=REPO)  # no DIR: ./source_specs
    assert seeds.finish() == 0, seeds.text
    assert sorted(line.split(":")[0] for line in seeds.text.splitlines()) == [
        f"ok  {path.name}" for path in sorted((REPO / "source_specs").glob("*.yaml"))
    ]  # the seeds, and any API the user added there

    def plain_http_token_url(spec: dict) -> None:
        spec["client"]["auth"]["token_url"] = "http://auth.example.com/token"

    bad = copy_seed_specs(tmp_path / "specs", ["ledger"], edit=plain_http_token_url)
    run = commands(argv(VALIDATE, bad), cwd=tmp_path)
    assert run.finish() == 1
    assert run.text.strip() == (
        "specs/ledger.yaml: client.auth.token_url: 'http://auth.example.com/token' must be"
        " an https:// URL (plain http only on a loopback host: 127.0.0.1, ::1, localhost)"
    )


GRAPHQL = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { assetNodes { id } } } } } } } }"""


def _locations(port: int) -> list[dict] | None:
    """The webserver's code locations; None while it does not accept connections yet."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": GRAPHQL}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            return None
        raise


def test_dagster_dev_from_the_repo_root_serves_every_seed_asset(
    commands, dagster_home, monkeypatch
) -> None:
    """`dagster dev` in the repo root serves the `restsync` code location, loaded, with all
    20 seed assets (the suite's own copy of the seed folder: `RESTSYNC_SPECS_DIR`, which the
    code location reads, as `restsync_assets.definitions` says)."""
    use_specs(monkeypatch, SEED_SPECS)
    port = free_port()
    dev = commands([*argv(UI), "--port", port], cwd=REPO)
    assert dev.wait_for_line(f"Serving dagster-webserver on http://127.0.0.1:{port}"), dev.text
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not (locations := _locations(port)) or locations[0]["loadStatus"] != "LOADED":
        assert time.monotonic() < deadline, locations
        with suppress(queue.Empty):  # paced by dagster dev's own output, bounded
            assert dev.next_line(timeout=0.5) is not None, dev.text
    (location,) = locations
    loaded = location["locationOrLoadError"]
    assert location["name"] == "restsync" and loaded["__typename"] == "RepositoryLocation", loaded
    assert len(loaded["repositories"][0]["assetNodes"]) == 20
    dev.stop()


@pytest.fixture
def sandbox_process(commands, monkeypatch):
    """`restsync sandbox` running; this test's env set to the `export NAME=value` lines it prints."""
    server = commands(argv(SANDBOX, port=free_port()))
    assert server.wait_for_line("Press Ctrl-C to stop."), server.text
    printed = re.findall(r"^export ([A-Z][A-Z0-9_]*)=(\S+)$", server.text, re.MULTILINE)
    assert len(printed) >= 5 * 4, server.text  # id, secret, base and token URL of each seed
    for key, value in printed:
        monkeypatch.setenv(key, value)
    yield server
    assert server.stop() == 0, server.text


def test_sandbox_materialize_and_check_as_the_readme_says(
    sandbox_process, warehouse, dagster_home, commands, tmp_path
) -> None:
    """`restsync sandbox`, both materialize commands, then `restsync check`: all succeed, every
    table equals the sandbox's data (the partitioned one: the range's days)."""
    for command in (MATERIALIZE, MATERIALIZE_PARTITIONS):
        run = commands(argv(command), cwd=tmp_path)
        assert run.finish() == 0, run.text
        checks = check_results(run.text)
        assert checks and set(checks.values()) == {"passed"}, run.text

    truth = Sandbox()  # unstarted: the same generated data as the process
    for spec in load_specs(SEED_SPECS):
        for resource in spec.resources:
            if resource.partitions is None:
                assert_table_equals_truth(truth, spec.name, resource.name)
    analytics = table_rows("ad_analytics", "ad_campaign_analytics")
    assert set(analytics) == {
        r["id"]
        for r in truth.rows("ad_analytics", "ad_campaign_analytics")
        if r["date"] in PARTITION_DAYS
    }

    check = commands(argv(CHECK), cwd=tmp_path)
    assert check.finish() == 0, check.text
    expected = loaded_checks()
    assert check.text.strip().endswith(f"{expected}/{expected} checks passed"), check.text


def test_restsync_import_airbyte_writes_a_spec_that_validates(commands, tmp_path) -> None:
    """`restsync import airbyte` as a process, its words filled in (the sandbox's public
    `exports` feed as a manifest): exit 0, `DIR/NAME.yaml` written, `restsync validate DIR` ok."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"base_url": "http://127.0.0.1:8765/exports"}))
    words = {
        "MANIFEST": REPO / "restsync_assets_tests" / "airbyte" / "exports.yaml",
        "CONFIG.json": config,
        "NAME": "exports",
        "DIR": tmp_path / "specs",
    }
    run = commands([str(words.get(w, w)) for w in argv(IMPORT)], cwd=tmp_path)
    assert run.finish() == 0, run.text
    streams = len(yaml.safe_load(words["MANIFEST"].read_text())["streams"])
    assert f"wrote {tmp_path / 'specs' / 'exports.yaml'} ({streams} resources)" in run.text
    assert commands(argv(VALIDATE, tmp_path / "specs"), cwd=tmp_path).finish() == 0
