"""A spec's dlt pipeline gets restsync's per-pipeline settings from a config provider, never
from `os.environ`, and only that pipeline sees them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dlt.common.configuration import inject_section, resolve_configuration
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext
from dlt.extract.pipe_iterator import PipeIterator
from dlt.normalize.configuration import ItemsNormalizerConfiguration

from restsync_assets.runtime.destination import build_pipeline
from restsync_assets.specs import load_specs
from restsync_assets.specs.model import SourceSpec

from .support import write_spec


def _spec(directory: Path, name: str, concurrency: int) -> SourceSpec:
    write_spec(
        directory,
        {
            "name": name,
            "client": {"base_url": "http://127.0.0.1:9", "concurrency": concurrency},
            "resources": [{"name": "items", "endpoint": {"path": "items"}}],
        },
    )
    (spec,) = [s for s in load_specs(directory) if s.name == name]
    return spec


def _resolved(pipeline_name: str) -> tuple[int, int, bool, bool]:
    """(workers, max_parallel_items, add_dlt_load_id, add_dlt_id) as dlt resolves them in
    `pipeline.extract` (its section context) and in its Arrow extractor."""
    context = ConfigSectionContext(pipeline_name=pipeline_name, sections=("extract",))
    with inject_section(context):
        extract = resolve_configuration(PipeIterator.PipeIteratorConfiguration())
        arrow = resolve_configuration(
            ItemsNormalizerConfiguration(), sections=("normalize", "parquet_normalizer")
        )
    return extract.workers, extract.max_parallel_items, arrow.add_dlt_load_id, arrow.add_dlt_id


def test_concurrency_and_arrow_ids_reach_dlt_without_writing_the_environment(
    tmp_path, warehouse
) -> None:
    """`client.concurrency: 4` gives that pipeline 4 extract workers, every pipeline gets
    `_dlt_load_id` on Arrow pages from dlt's extractor and no `_dlt_id` from dlt's normalizer
    (`ArrowPages` adds it, so the parquet file is not rewritten), a sequential spec keeps dlt's
    defaults, and building the pipelines leaves `os.environ` exactly as it was."""
    before = dict(os.environ)
    parallel = build_pipeline(_spec(tmp_path / "specs", "parallel", 4))
    sequential = build_pipeline(_spec(tmp_path / "specs", "sequential", 1))
    assert dict(os.environ) == before
    assert _resolved(parallel.pipeline_name) == (4, 20, True, False)
    assert _resolved(sequential.pipeline_name) == (5, 20, True, False)  # dlt's own defaults


def test_settings_follow_the_spec_and_yield_to_the_users_own(
    tmp_path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuilt pipeline takes the spec's current concurrency (none left over from an
    earlier build), and a user's `<PIPELINE>__EXTRACT__WORKERS` still wins."""
    name = build_pipeline(_spec(tmp_path / "a", "shop", 30)).pipeline_name
    assert _resolved(name)[:2] == (30, 30)
    build_pipeline(_spec(tmp_path / "b", "shop", 1))
    assert _resolved(name)[:2] == (5, 20)
    monkeypatch.setenv(f"{name.upper()}__EXTRACT__WORKERS", "2")
    build_pipeline(_spec(tmp_path / "c", "shop", 8))
    assert _resolved(name)[:2] == (2, 20)


@pytest.mark.parametrize("name", ["duckdb", "postgres"])
def test_a_destination_works_its_capabilities_out_once_per_naming_convention(
    name, tmp_path, monkeypatch
) -> None:
    """dlt asks for capabilities some 30 times a run, each time resolving the destination's
    configuration from every provider; restsync's destination resolves it once per naming
    convention, hands out a fresh copy each call (mutating one leaves the next as dlt gave
    it), answers the same as dlt, and leaves a call with an explicit config to dlt."""
    from dlt.common.destination import Destination
    from dlt.common.normalizers.naming import snake_case, sql_cs_v1

    from restsync_assets.runtime.destination import destination

    monkeypatch.setenv("RESTSYNC_DESTINATION", name)
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgresql://u@127.0.0.1:9/db")
    plain = Destination.from_reference(name).capabilities()
    resolutions = []
    configuration = Destination.configuration

    def counted(self, *args, **kwargs):
        resolutions.append(args)
        return configuration(self, *args, **kwargs)

    monkeypatch.setattr(Destination, "configuration", counted)
    target = destination()
    first = target.capabilities()
    first.max_identifier_length = 1
    answers = [target.capabilities() for _ in range(30)]
    assert len(resolutions) == 1, "30 calls without a naming convention resolve once"
    assert {a.max_identifier_length for a in answers} != {1}, "each call gets its own copy"
    assert answers[0].preferred_loader_file_format == plain.preferred_loader_file_format
    assert answers[0].max_identifier_length == plain.max_identifier_length

    for naming in (snake_case.NamingConvention(), sql_cs_v1.NamingConvention()):
        for _ in range(3):
            target.capabilities(naming=naming)
    assert len(resolutions) == 1 + 1 + 1, "one more resolution per naming convention"
    resolutions.clear()
    target.capabilities(config=target.configuration(target.spec(), accept_partial=True))
    assert len(resolutions) == 1, "a call with its own config is dlt's (no extra resolution)"
