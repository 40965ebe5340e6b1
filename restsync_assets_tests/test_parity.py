"""dlt parity: every case of `parity_cases` loads the same tables through restsync as through
plain `dlt.pipeline(...).run(rest_api_source(config))`.

Each case's config is written as a restsync YAML spec and materialized through Dagster into
one DuckDB file, and run by plain dlt into another, each against its own fresh blog mock.
Every table (dlt's nested child tables included, dlt's `_dlt_*` tables not) must have the
same columns and types and the same rows, compared sorted on every column but dlt's row ids
(`_dlt_load_id`, `_dlt_id`, `_dlt_parent_id`, `_dlt_root_id`). A table the case marks with
`MockTruth` must instead hold exactly the mock's rows. Then again with restsync fetching
with `client.concurrency: 4`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import pytest
from dagster import DagsterInstance
from dlt.sources.rest_api import rest_api_source

from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

from .mock_api import BlogApi
from .parity_cases import CASES, MockTruth, ParityCase
from .support import (
    Table,
    failure_message,
    normal,
    sorted_rows,
    typed_tables,
    use_specs,
    use_warehouse,
    write_spec,
)

#: what restsync's YAML says before `<NAME>_BASE_URL` points it at the mock (a closed port)
UNUSED_ORIGIN = "http://127.0.0.1:9"


def absolute(config: dict[str, Any], origin: str) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["client"]["base_url"] = origin + config["client"]["base_url"]
    return config


def _as_mock(value: Any) -> str:
    """A warehouse value as the mock wrote it (timestamps as `stamp` writes them)."""
    return str(normal(value))


def run_times(api: BlogApi, runs: int, load: Callable[[], None]) -> None:
    """`load` `runs` times, the mock growing before each run but the first."""
    for run in range(runs):
        if run:
            api.blog.grow()
        load()


def load_with_dlt(case: ParityCase, folder: Path) -> dict[str, Table]:
    db = folder / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=f"parity_dlt_{case.name}",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name=case.name,
        pipelines_dir=str(folder / "pipelines"),
    )
    with BlogApi() as api:
        config = absolute(case.config, api.url)
        run_times(
            api,
            case.runs,
            lambda: pipeline.run(rest_api_source(copy.deepcopy(config), name=case.name)),
        )
    return typed_tables(db, case.name)


def load_with_restsync(
    case: ParityCase, folder: Path, concurrency: int, monkeypatch
) -> tuple[dict[str, Table], BlogApi]:
    spec = {"name": case.name, **absolute(case.config, UNUSED_ORIGIN)}
    if concurrency > 1:
        spec["client"]["concurrency"] = concurrency
    specs = write_spec(folder / "specs", spec).parent
    db = use_warehouse(monkeypatch, folder / "restsync.duckdb", folder / "pipelines")
    (loaded,) = load_specs(specs)
    defs = build_definitions([loaded])
    instance = DagsterInstance.ephemeral()

    def materialize() -> None:
        for result in materialize_spec(defs, loaded, instance, with_checks=False):
            assert result.success, failure_message(result)

    with BlogApi() as api:
        use_specs(monkeypatch, specs, {case.name: api.url + case.config["client"]["base_url"]})
        run_times(api, case.runs, materialize)
    return typed_tables(db, case.name), api


def differences(
    restsync: dict[str, Table],
    truth: dict[str, Table],
    mock_truth: dict[str, MockTruth],
    api: BlogApi,
) -> list[str]:
    """One line per difference between restsync's tables and the truth (dlt's or the mock's)."""
    problems = []
    if set(restsync) != set(truth):
        problems.append(
            f"tables: restsync only {sorted(set(restsync) - set(truth))}, dlt only {sorted(set(truth) - set(restsync))}"
        )
    for name in sorted(set(restsync) & set(truth)):
        mine, theirs = restsync[name], truth[name]
        if mine.columns != theirs.columns:
            problems.append(
                f"{name}: columns restsync only {sorted(set(mine.columns) - set(theirs.columns))}, "
                f"dlt only {sorted(set(theirs.columns) - set(mine.columns))}"
            )
            continue
        expected, actual = theirs.rows, mine.rows
        if name in mock_truth:
            expected, actual = against_mock(mine, mock_truth[name], api)
        if actual != expected:
            missing = [r for r in expected if r not in actual][:3]
            extra = [r for r in actual if r not in expected][:3]
            problems.append(
                f"{name}: {len(actual)} rows, truth {len(expected)}; missing {missing}; extra {extra}"
            )
    return problems


def against_mock(table: Table, truth: MockTruth, api: BlogApi) -> tuple[list, list]:
    """The mock's rows and the table's, both on `truth.columns`, as the mock writes values."""
    names = [c for c, _ in table.columns]
    picks = [names.index(c) for c in truth.columns]
    expected = [tuple(str(r[c]) for c in truth.columns) for r in api.blog.rows(truth.collection)]
    actual = [tuple(_as_mock(row[i]) for i in picks) for row in table.rows]
    return sorted_rows(expected), sorted_rows(actual)


def resource_names(case: ParityCase) -> list[str]:
    return [r if isinstance(r, str) else r["name"] for r in case.config["resources"]]


@pytest.fixture(scope="module")
def dlt_tables(tmp_path_factory) -> Callable[[ParityCase], dict[str, Table]]:
    """Plain dlt's tables of a case, loaded once per case for both concurrency variants."""
    cache: dict[str, dict[str, Table]] = {}

    def tables(case: ParityCase) -> dict[str, Table]:
        if case.name not in cache:
            cache[case.name] = load_with_dlt(case, tmp_path_factory.mktemp(f"dlt_{case.name}"))
        return cache[case.name]

    return tables


@pytest.mark.parametrize("concurrency", [1, 4], ids=["sequential", "concurrency_4"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_restsync_loads_every_table_as_plain_dlt_does(
    case, concurrency, dlt_tables, tmp_path, monkeypatch
):
    """restsync (YAML spec through Dagster) and plain dlt load the same tables, columns, types
    and rows from the same config; `MockTruth` tables hold exactly the mock's rows."""
    truth = dlt_tables(case)
    empty = [n for n in resource_names(case) if not (n in truth and truth[n].rows)]
    assert not empty, f"plain dlt loaded no rows for {empty}: the case would prove nothing"
    restsync, api = load_with_restsync(case, tmp_path, concurrency, monkeypatch)
    problems = differences(restsync, truth, case.mock_truth, api)
    assert not problems, "\n".join(problems)
