"""`restsync run [SELECTION ...] [--partition KEY] [--with-checks/--no-checks] [--full-refresh]
[--json] [--verbose]`.

Materializes specs through Dagster, in this process: one run per spec and partitioning (what
the UI launches for a spec's group), on the instance of `DAGSTER_HOME` when it is set (the
runs then appear in `dagster dev`), else on an ephemeral one. The console shows one line per
run, live progress while it loads (requests, rows, rows/s; a wait for another run's lock),
one line per materialized asset, and a table at the end: rows this run loaded and rows in the
table, requests and retries, lock wait, seconds, checks, status. Dagster's and dlt's own log
lines stay in the run's log (`--verbose` prints them too). Each failure is one line
(`error: ...`) and the exit is non-zero. `--json` prints one JSON object instead (progress
goes to stderr).

SELECTION is a spec name or `spec/resource`; none means every unpartitioned asset and the
latest partition of every partitioned one. A selected child loads alone (its parent is
fetched to drive it, not written). `--full-refresh` tags the runs `restsync/full_refresh:
"true"`: each drops its selected tables and their state and loads them from `initial_value`
(`runtime.full_refresh`). A spec file that does not validate stops only a selection that
names it (with its problems, one line each).

Also the in-process runner `restsync demo`, `restsync check` and the tests use:
`materialize_spec` (one run per multi-asset of a spec), `load_definitions`,
`checks_definition`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from dagster import (
    AssetCheckEvaluation,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    materialize,
)

from restsync_assets import settings
from restsync_assets.cli.tables import AssetOutcome, outcome_table
from restsync_assets.errors import RestsyncError
from restsync_assets.keys import asset_key, resource_name, resources_by_key
from restsync_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from restsync_assets.runtime.full_refresh import FULL_REFRESH_TAG
from restsync_assets.specs.errors import SpecError, SpecValidationError
from restsync_assets.specs.model import SourceSpec
from restsync_assets.text import plural

#: Dagster's console logger prints nothing; every event stays in the run's log
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
#: Dagster's console logger prints warnings and errors only (the in-process runner)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: Dagster's console logger prints the run's log lines (`--verbose`)
VERBOSE_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
#: the logger dlt writes to (the name of its default run context)
DLT_LOGGER = "dlt"
#: how often a non-terminal console gets a progress line
PROGRESS_LINE_SECONDS = 10.0


class RunUsageError(RestsyncError, ValueError):
    """A selection or partition that does not exist: one line, with the allowed values."""

    kind = "config"


@dataclass
class Target:
    """One Dagster run: some assets of one multi-asset of a spec, maybe one partition."""

    spec: SourceSpec
    assets_def: AssetsDefinition
    keys: list[AssetKey]
    partition: str | None = None

    @property
    def label(self) -> str:
        names = ", ".join(str(resource_name(self.spec, k)) for k in self.keys)
        where = f" [partition {self.partition}]" if self.partition else ""
        return f"{self.spec.name}: {names}{where}"


@dataclass
class RunReport:
    outcomes: list[AssetOutcome] = field(default_factory=list)
    #: one line per failed run
    failures: list[str] = field(default_factory=list)
    #: one line per failed check
    failed_checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.failed_checks

    def error_lines(self) -> list[str]:
        """The lines that end a failed `restsync run`: each failed run's, then the checks'."""
        lines = list(self.failures)
        if self.failed_checks:
            count = len(self.failed_checks)
            lines.append(f"{plural(count, 'check')} failed, the first: {self.failed_checks[0]}")
        return lines

    def as_json(self) -> dict[str, Any]:
        """`restsync run --json`: every asset's figures, and every failure line."""
        return {
            "ok": self.ok,
            "assets": [o.as_json() for o in self.outcomes],
            "failures": [*self.failures, *self.failed_checks],
        }


def plan(
    defs: Definitions,
    specs: Sequence[SourceSpec],
    selection: Sequence[str] = (),
    partition: str | None = None,
) -> list[Target]:
    """The runs that materialize `selection` (see the module doc); `RunUsageError` if unknown."""
    wanted = _selected_keys(specs, selection)
    targets = []
    for spec in specs:
        for assets_def in load_definitions(defs, spec):
            order = [asset_key(spec, r) for r in spec.resources]
            keys = [k for k in order if k in wanted and k in assets_def.keys]
            if keys:
                chosen = _partition(assets_def, keys, partition)
                targets.append(Target(spec, assets_def, keys, chosen))
    if partition is not None and not any(t.partition for t in targets):
        raise RunUsageError("--partition: none of the selected assets is partitioned")
    return targets


def _selected_keys(specs: Sequence[SourceSpec], selection: Sequence[str]) -> set[AssetKey]:
    by_name = {s.name: s for s in specs}
    if not selection:
        return {asset_key(s, r) for s in specs for r in s.resources}
    keys: set[AssetKey] = set()
    for item in selection:
        name, _, resource = item.partition("/")
        spec = by_name.get(name)
        if spec is None:
            raise RunUsageError(f"{item}: unknown spec {name!r}; specs: {', '.join(by_name)}")
        if not resource:
            keys.update(asset_key(spec, r) for r in spec.resources)
        elif resource in {r.name for r in spec.resources}:
            keys.add(asset_key(spec, resource))
        else:
            names = ", ".join(r.name for r in spec.resources)
            raise RunUsageError(f"{item}: {name} has no resource {resource!r}; resources: {names}")
    return keys


def _partition(
    assets_def: AssetsDefinition, keys: Sequence[AssetKey], partition: str | None
) -> str | None:
    """`partition` if it is one of the assets' partitions, the latest one when not given."""
    partitions = assets_def.partitions_def
    if partitions is None:
        return None
    assets = ", ".join("/".join(k.path) for k in keys)
    latest = partitions.get_last_partition_key()
    if partition is None:
        if latest is None:
            raise RunUsageError(f"{assets}: no partition has ended yet")
        return latest
    if not partitions.has_partition_key(partition):
        first = partitions.get_first_partition_key()
        raise RunUsageError(
            f"--partition {partition}: not a partition of {assets}"
            f" ({str(partitions).rstrip('.')}); the first is {first}, the latest {latest}"
        )
    return partition


def run_command(
    selection: Sequence[str],
    partition: str | None,
    with_checks: bool,
    full_refresh: bool = False,
    as_json: bool = False,
    verbose: bool = False,
) -> int:
    """`restsync run`: materialize the selection; non-zero when a run or a check failed."""
    import json

    try:
        report = run(
            selection,
            partition,
            with_checks,
            out=sys.stderr if as_json else sys.stdout,
            full_refresh=full_refresh,
            verbose=verbose,
        )
    except (SpecValidationError, RunUsageError) as error:
        if as_json:
            print(json.dumps({"ok": False, "assets": [], "failures": str(error).splitlines()}))
        print(error, file=sys.stderr)
        return 2 if isinstance(error, RunUsageError) else 1
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    return 0 if report.ok else 1


def selectable_specs(selection: Sequence[str] = ()) -> list[SourceSpec]:
    """The folder's valid specs; `SpecValidationError` (the problems of those files, one line
    each) only when `selection` names a spec whose file does not validate. With no
    selection, the invalid specs are left out and said so on stderr."""
    from restsync_assets.specs import read_project_specs

    specs, errors = read_project_specs()
    if not errors:
        return specs
    names = {s.name for s in specs}
    wanted = {item.partition("/")[0] for item in selection} - names
    broken = [e for e in errors if _spec_name(e) in wanted]
    if broken:
        raise SpecValidationError(broken)
    if not selection:
        files = sorted({str(e.path.name) for e in errors})
        print(
            f"note: left out {plural(len(files), 'spec file')} that do not validate"
            f" ({', '.join(files)}): `restsync validate` lists the problems",
            file=sys.stderr,
        )
    return specs


def _spec_name(error: SpecError) -> str:
    """The spec an error is about: its file's `name:` when readable, else the file's stem."""
    import yaml

    try:
        raw = yaml.safe_load(error.path.read_text())
    except (OSError, yaml.YAMLError):
        raw = None
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else error.path.stem


def run(
    selection: Sequence[str] = (),
    partition: str | None = None,
    with_checks: bool = True,
    out: TextIO = sys.stdout,
    full_refresh: bool = False,
    verbose: bool = False,
) -> RunReport:
    """Materialize the selection, print progress and the summary table; see the module doc."""
    from restsync_assets.definitions import build_definitions

    specs = selectable_specs(selection)
    defs = build_definitions(specs)
    targets = plan(defs, specs, selection, partition)
    report = RunReport()
    assets = sum(len(t.keys) for t in targets)
    options = RunOptions(with_checks, full_refresh, verbose)
    with _instance() as (instance, where), _dlt_logs(verbose, out):
        refresh = "; full refresh (tables and state dropped first)" if full_refresh else ""
        print(
            f"restsync run: {plural(assets, 'asset')} in {plural(len(targets), 'run')};"
            f" Dagster instance: {where}; warehouse: {_warehouse()}{refresh}",
            file=out,
        )
        started = time.perf_counter()
        for target in targets:
            _run_target(target, defs, instance, options, out, report)
        print("", file=out)
        print(outcome_table(report.outcomes), file=out)
        print(f"\n{_summary(report)} in {time.perf_counter() - started:.1f}s", file=out)
    for line in report.error_lines():
        print(f"error: {line}", file=out)
    return report


@dataclass(frozen=True)
class RunOptions:
    with_checks: bool = True
    full_refresh: bool = False
    verbose: bool = False

    @property
    def tags(self) -> dict[str, str]:
        tags = {"restsync/command": "run"}
        if self.full_refresh:
            tags[FULL_REFRESH_TAG] = "true"
        return tags


@contextmanager
def _instance() -> Iterator[tuple[DagsterInstance, str]]:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        with DagsterInstance.ephemeral() as instance:
            yield instance, "ephemeral (set DAGSTER_HOME to keep the runs for the UI)"
        return
    with _first_use_notices(home), DagsterInstance.get() as instance:
        yield instance, f"DAGSTER_HOME={home}"


@contextmanager
def _dlt_logs(verbose: bool, out: TextIO) -> Iterator[None]:
    """dlt's own log lines (the `dlt` logger): off the console unless `verbose` (its load
    retries print whole tracebacks; dlt writes to the first handler its logger has, so for
    these runs that handler discards them); with `verbose`, INFO and up go to `out`."""
    import logging

    logger = logging.getLogger(DLT_LOGGER)
    saved, level = logger.handlers[:], logger.level
    if verbose:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(asctime)s dlt %(levelname)s %(message)s"))
        logger.handlers = [handler]
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    else:
        logger.handlers = [logging.NullHandler()]
    try:
        yield
    finally:
        logger.handlers = saved
        logger.setLevel(level)


@contextmanager
def _first_use_notices(home: str) -> Iterator[None]:
    """Dagster's telemetry banner (printed once per DAGSTER_HOME) as one line; anything else
    Dagster writes to stderr meanwhile is passed on unchanged."""
    import io
    from contextlib import redirect_stderr

    stderr = sys.stderr
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            yield
    finally:
        text = captured.getvalue()
        if "Telemetry:" in text and "https://bit.ly" in text:
            text = _without_banner(text)
            print(
                "note: Dagster collects usage statistics for this DAGSTER_HOME; to opt out, put"
                f" `telemetry: {{enabled: false}}` in {home}/dagster.yaml",
                file=stderr,
            )
        if text.strip():
            stderr.write(text)


def _without_banner(text: str) -> str:
    """`text` without Dagster's telemetry and welcome paragraphs (and their blank lines)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "Telemetry:" in line)
    end = next(i for i, line in enumerate(lines) if "https://bit.ly" in line and i > start)
    while start > 0 and not lines[start - 1].strip():
        start -= 1
    while end + 1 < len(lines) and not lines[end + 1].strip():
        end += 1
    return "".join(lines[:start] + lines[end + 1 :])


def _warehouse() -> str:
    if settings.destination_name() == "duckdb":
        return str(settings.duckdb_path())
    return settings.destination_name()


def _run_target(
    target: Target,
    defs: Definitions,
    instance: DagsterInstance,
    options: RunOptions,
    out: TextIO,
    report: RunReport,
    verbose: bool = False,
) -> None:
    from restsync_assets.runtime.progress import observing

    print(f"-> {target.label}", file=out, flush=True)
    selection = AssetSelection.assets(*target.keys)
    checks = [checks_definition(defs, target.spec)] if options.with_checks else []
    console = _Console(out, time.perf_counter())
    with observing(console):
        result = materialize(
            [target.assets_def, *checks],
            resources=defs.resources,
            instance=instance,
            selection=selection if options.with_checks else selection.without_checks(),
            partition_key=target.partition,
            run_config=VERBOSE_CONSOLE if options.verbose else QUIET_CONSOLE,
            raise_on_error=False,
            tags=options.tags,
        )
    console.finish()
    _collect(target, result, console, report)


def _figure(metadata: Any, key: str, kind: type = int) -> Any:
    value = metadata.get(key)
    return None if value is None else kind(value.value)


def _collect(
    target: Target, result: ExecuteInProcessResult, console: _Console, report: RunReport
) -> None:
    from restsync_assets.runtime.load import LOCK_WAIT_S, REQUESTS, RETRIES

    outcomes = {
        key: AssetOutcome(
            asset="/".join(key.path),
            seconds=console.seconds.get(str(resource_name(target.spec, key))),
            status="FAILED",
        )
        for key in target.keys
    }
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        outcome = outcomes.get(materialization.asset_key)
        if outcome is None:
            continue
        metadata = materialization.metadata
        outcome.status = "ok"
        outcome.rows = _figure(metadata, "dagster/row_count")
        outcome.rows_loaded = _figure(metadata, "rows_loaded") or 0  # dagster-dlt omits 0
        outcome.requests = _figure(metadata, REQUESTS)
        outcome.retries = _figure(metadata, RETRIES)
        outcome.lock_wait_s = _figure(metadata, LOCK_WAIT_S, float)
    for evaluation in result.get_asset_check_evaluations():
        outcome = outcomes.get(evaluation.asset_key)
        if outcome is None:
            continue
        if evaluation.passed:
            outcome.checks_passed += 1
            outcome.check_results[evaluation.check_name] = "ok"
        elif warns(evaluation):
            outcome.checks_warned += 1
            outcome.check_results[evaluation.check_name] = "WARN"
        else:
            outcome.checks_failed += 1
            outcome.check_results[evaluation.check_name] = "FAILED"
            report.failed_checks.append(
                f"{outcome.asset} {evaluation.check_name}: {evaluation.description}"
            )
    for outcome in outcomes.values():
        if outcome.status == "ok" and outcome.checks_failed:
            outcome.status = "ok, checks failed"
    if not result.success:
        report.failures.extend(_failures(result) or [f"{target.label}: the run failed"])
    report.outcomes.extend(outcomes.values())


def _failures(result: ExecuteInProcessResult) -> list[str]:
    """Each failed step of the run as one line (restsync's own message, without Dagster's
    wrapping)."""
    lines = []
    for event in result.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        if data is None or data.error is None:
            continue
        if data.user_failure_data and data.user_failure_data.description:
            line = data.user_failure_data.description.strip().splitlines()[-1]
        else:
            line = data.error.message.strip().splitlines()[-1]
        if line not in lines:
            lines.append(line)
    return lines


def _summary(report: RunReport) -> str:
    done = sum(o.status == "ok" for o in report.outcomes)
    passed = sum(o.checks_passed for o in report.outcomes)
    warned = sum(o.checks_warned for o in report.outcomes)
    total = passed + warned + sum(o.checks_failed for o in report.outcomes)
    checks = f", {passed}/{plural(total, 'check')} passed" if total else ""
    checks += f", {warned} warned" if warned else ""
    return f"{done}/{plural(len(report.outcomes), 'asset')} materialized{checks}"


class _Console:
    """Live progress: per resource the requests sent, rows extracted and rows per second (one
    rewritten line on a terminal, a line every few seconds otherwise); a line when the run
    waits for another run's lock; then one line per materialized asset."""

    def __init__(self, out: TextIO, started: float, clock: Any = time.perf_counter):
        self.out = out
        self.started = started
        self.clock = clock
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, tuple[int, int, float | None]] = {}
        self._last_line = 0.0
        self._open = False
        self._first: float | None = None  # the first rows extracted

    def waiting(self, spec: str, message: str) -> None:
        self.finish()
        print(f"   {spec}: {message}", file=self.out, flush=True)

    def extracted(
        self, spec: str, resource: str, rows: int, requests: int = 0, share: float | None = None
    ) -> None:
        now = self.clock()
        if self._first is None:
            self._first = now
        self.rows[resource] = (rows, requests, share)
        counts = ", ".join(
            f"{name} {plural(count, 'row')} in {plural(sent, 'request')}"
            + ("" if part is None else f" ({part:.0%})")
            for name, (count, sent, part) in self.rows.items()
        )
        text = f"   {spec}: so far {counts}"
        if now - self._first >= 1.0:  # a rate over less than a second says little
            total = sum(count for count, _, _ in self.rows.values())
            text += f"; {total / (now - self._first):,.0f} rows/s"
        if self.tty:
            self.out.write(f"\r\033[K{text}")
            self.out.flush()
            self._open = True
        elif now - self._last_line >= PROGRESS_LINE_SECONDS:
            print(text, file=self.out, flush=True)
            self._last_line = now

    def materialized(self, spec: str, resource: str, metadata: Any) -> None:
        self.finish()
        self.seconds[resource] = time.perf_counter() - self.started
        value = metadata.get("dagster/row_count")
        rows = plural(int(value.value), "row") if value is not None else "rows not counted"
        loaded = metadata.get("rows_loaded")
        count = int(loaded.value) if loaded is not None else 0
        print(
            f"   {spec}/{resource}: materialized, {rows} in the table ({count} loaded)",
            file=self.out,
            flush=True,
        )

    def finish(self) -> None:
        if self._open:
            self.out.write("\r\033[K")
            self.out.flush()
            self._open = False


# ---------------------------------------------------------------- the in-process runner


def load_definitions(defs: Definitions, spec: SourceSpec) -> Iterator[AssetsDefinition]:
    """The multi-assets of `spec` (one per partitioning)."""
    keys = resources_by_key(spec)
    for assets_def in defs.assets or []:
        if (
            isinstance(assets_def, AssetsDefinition)
            and not isinstance(assets_def, AssetChecksDefinition)
            and any(k in keys for k in assets_def.keys)
        ):
            yield assets_def


def checks_definition(defs: Definitions, spec: SourceSpec) -> AssetChecksDefinition:
    """The multi-check of `spec`'s assets."""
    keys = resources_by_key(spec)
    for checks in defs.asset_checks or []:
        if any(k.asset_key in keys for k in checks.check_keys):
            return checks
    raise KeyError(spec.name)


def materialize_spec(
    defs: Definitions,
    spec: SourceSpec,
    instance: DagsterInstance,
    *,
    keys: list[AssetKey] | None = None,
    with_checks: bool = True,
    raise_on_error: bool = False,
    run_config: dict | None = None,
) -> list[ExecuteInProcessResult]:
    """One run per multi-asset of `spec`; a partitioned one loads all its partitions in one run.

    `keys` restricts the runs to some assets; their checks run after them unless `with_checks`
    is false.
    """
    results = []
    checks = [checks_definition(defs, spec)] if with_checks else []
    for assets_def in load_definitions(defs, spec):
        wanted = [k for k in assets_def.keys if keys is None or k in keys]
        if not wanted:
            continue
        selection = AssetSelection.assets(*wanted)
        if not with_checks:
            selection = selection.without_checks()
        tags = {}
        partitions_def = assets_def.partitions_def
        if partitions_def is not None:
            tags = {
                RANGE_START_TAG: partitions_def.get_first_partition_key(),
                RANGE_END_TAG: partitions_def.get_last_partition_key(),
            }
        results.append(
            materialize(
                [assets_def, *checks],
                resources=defs.resources,
                instance=instance,
                selection=selection,
                tags=tags,
                raise_on_error=raise_on_error,
                run_config=run_config if run_config is not None else QUIET,
            )
        )
    return results


def warns(evaluation: AssetCheckEvaluation) -> bool:
    """A check that did not pass with severity WARN (`rejected_rows`): a warning, not a failure."""
    return not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
