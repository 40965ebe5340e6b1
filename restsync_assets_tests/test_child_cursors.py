"""Incremental children keep one cursor per parent row, and concurrency never changes a load.

Two small APIs on 127.0.0.1 (`fake_servers.JsonApi`), both serving children `since` a cursor
(inclusive, like GitHub's `since`): `tracker` (5 repos paged two at a time, 11 issues) and
`blog` (10 posts paged five at a time, 5 comments each paged two at a time, like dlt's mock
`post_comments`). Later parents hold older children, so one cursor shared across parents
(dlt's rest_api, dlt issue 2429) drops rows. Every load goes through Dagster's `materialize`
into DuckDB and is compared with the API's truth row for row.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from restsync_assets.cli.run import QUIET, load_definitions, materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.child_cursors import CursorError, ParentCursor, ParentFetcher
from restsync_assets.specs import load_specs
from restsync_assets.specs.errors import SpecValidationError
from restsync_assets.specs.model import ChildCursorSpec

from .fake_servers import JsonApi, Request, page
from .support import (
    canonical,
    copy_seed_specs,
    dataset_tables,
    table,
    use_specs,
    use_warehouse,
    write_spec,
)

INITIAL = "2000-01-01T00:00:00Z"
PAGES = {"type": "page_number", "base_page": 1, "total_path": "total_pages"}


def _ts(day: int, hour: int = 0) -> str:
    return f"2026-10-{day:02d}T{hour:02d}:00:00Z"


def _later(stamp: str, hours: int) -> str:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ParentChildApi:
    """`GET /<parent>` (paged) and `GET /<parent>/{id}/<segment>?since=` (children, oldest first)."""

    name: str
    parent: str
    child: str
    segment: str
    cursor: str
    parents: list[dict]
    children: list[dict]
    parent_page: int | None  # None: the parents in one bare list
    child_page: int | None = None  # None: one bare list per parent
    api: JsonApi = field(init=False)
    pristine: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        self.pristine = copy.deepcopy(self.children)
        self.api = JsonApi(
            {
                f"GET /{self.parent}": self._parents,
                f"GET /{self.parent}/{{id}}/{self.segment}": self._children_of,
            }
        )

    def _parents(self, request: Request) -> Any:
        return (
            self.parents
            if self.parent_page is None
            else page(self.parents, request.query, self.parent_page)
        )

    def _children_of(self, request: Request) -> Any:
        since = request.query.get("since", "")
        rows = sorted(
            (r for r in self.of(int(request.params["id"])) if r[self.cursor] >= since),
            key=lambda r: (r[self.cursor], r["id"]),
        )
        return rows if self.child_page is None else page(rows, request.query, self.child_page)

    def of(self, parent_id: int) -> list[dict]:
        return [r for r in self.children if r["parent_id"] == parent_id]

    def upsert(self, row: dict) -> None:
        self.children = [r for r in self.children if r["id"] != row["id"]] + [row]

    def newest(self, parent_id: int) -> str:
        return max(r[self.cursor] for r in self.of(parent_id))

    def child_path(self, parent_id: int) -> str:
        return f"/{self.parent}/{parent_id}/{self.segment}"

    def sent_since(self) -> dict[int, set[str]]:
        """The `since` each parent's child requests carried (every page)."""
        sent: dict[int, set[str]] = {}
        for call in self.api.calls_to(rf"/{self.parent}/\d+/{self.segment}"):
            sent.setdefault(int(call.path.split("/")[2]), set()).add(call.query.get("since"))
        return sent

    def spec(self, concurrency: int = 1, write_disposition: str = "merge") -> dict:
        endpoint: dict[str, Any] = {
            "path": f"/{self.parent}/{{resources.{self.parent}.id}}/{self.segment}",
            "incremental": {
                "cursor_path": self.cursor,
                "start_param": "since",
                "initial_value": INITIAL,
            },
        }
        parents: dict[str, Any] = {"path": f"/{self.parent}"}
        for paged, where in ((self.parent_page, parents), (self.child_page, endpoint)):
            paging = {"data_selector": "data", "paginator": PAGES}
            where.update(paging if paged is not None else {"paginator": "single_page"})
        return {
            "name": self.name,
            "client": {"base_url": "http://api.invalid", "concurrency": concurrency},
            "resources": [
                {
                    "name": self.parent,
                    "endpoint": parents,
                    "primary_key": "id",
                    "write_disposition": "merge",
                },
                {
                    "name": self.child,
                    "endpoint": endpoint,
                    "primary_key": "id",
                    "write_disposition": write_disposition,
                },
            ],
        }

    def truth(self, end: str | None = None) -> dict[str, list[dict]]:
        """Both tables as the API holds them (children before `end` only, when given)."""
        children = [c for c in self.children if end is None or c[self.cursor] < end]
        return {self.parent: _sorted(self.parents), self.child: _sorted(children)}


def _sorted(rows: list[dict]) -> list[dict]:
    return canonical(dict(r) for r in rows)


def tracker() -> ParentChildApi:
    """5 repos, 11 issues; each repo's newest issue is older than some earlier repo's."""
    stamps = {
        101: [_ts(13, 12), _ts(1)],
        102: [_ts(12, 12), _ts(9)],
        103: [_ts(14), _ts(8), _ts(11)],
        104: [_ts(7), _ts(10)],
        105: [_ts(6), _ts(2)],
    }
    issues = [
        {
            "id": 1000 + 10 * (repo - 100) + n,
            "parent_id": repo,
            "title": f"issue {n} of {repo}",
            "updated_at": at,
        }
        for repo, ats in stamps.items()
        for n, at in enumerate(ats)
    ]
    repos = [{"id": repo, "name": f"repo-{repo}"} for repo in stamps]
    return ParentChildApi("tracker", "repos", "issues", "issues", "updated_at", repos, issues, 2)


def blog() -> ParentChildApi:
    """10 posts, 5 comments each; later posts hold older comments (dlt's post_comments shape)."""
    posts = [{"id": p, "title": f"Post {p}"} for p in range(1, 11)]
    comments = [
        {
            "id": 100 * p + j,
            "parent_id": p,
            "body": f"Comment {j} for post {p}",
            "created_at": _ts(1 + 2 * (10 - p) + j % 3, j),
        }
        for p in range(1, 11)
        for j in range(5)
    ]
    return ParentChildApi(
        "blog", "posts", "post_comments", "comments", "created_at", posts, comments, 5, 2
    )


APIS = {"tracker": tracker, "blog": blog}


@pytest.fixture(params=["tracker"])
def served(request, warehouse) -> Iterator[ParentChildApi]:
    """A fake API, running: `tracker` unless a test asks for each of `APIS`."""
    fake = APIS[request.param]()
    with fake.api:
        yield fake


def _load(directory: Path, name: str) -> None:
    (spec,) = [s for s in load_specs(directory) if s.name == name]
    results = materialize_spec(build_definitions([spec]), spec, DagsterInstance.ephemeral())
    assert all(r.success for r in results)


def _use(fake: ParentChildApi, tmp_path: Path, monkeypatch, **spec_options: Any) -> Path:
    directory = tmp_path / "specs"
    write_spec(directory, fake.spec(**spec_options))
    use_specs(monkeypatch, directory, {fake.name: fake.api.url})
    return directory


def _assert_loaded_truth(fake: ParentChildApi, end: str | None = None) -> None:
    for name, rows in fake.truth(end).items():
        assert table(fake.name, name) == rows, f"{fake.name}.{name} differs from the API"


# --------------------------------------------------------------------------- per-parent cursors


@pytest.mark.parametrize("served", list(APIS), indirect=True)
@pytest.mark.parametrize("write_disposition", ["merge", "append"])
def test_runs_load_every_child_and_ask_each_parent_from_its_own_cursor(
    served, write_disposition, tmp_path, monkeypatch
):
    """First run: every child of every parent. Re-run with nothing new: each parent asked
    `since` its own newest child, the same rows, none duplicated (also with `append`)."""
    specs = _use(served, tmp_path, monkeypatch, write_disposition=write_disposition)
    _load(specs, served.name)
    _assert_loaded_truth(served)
    assert set().union(*served.sent_since().values()) == {INITIAL}

    served.api.clear()
    _load(specs, served.name)
    _assert_loaded_truth(served)
    assert served.sent_since() == {p["id"]: {served.newest(p["id"])} for p in served.parents}


def test_new_and_updated_children_of_one_parent_move_only_its_cursor(served, tmp_path, monkeypatch):
    """A later run picks up a new and an updated child of one parent, though both are older
    than other parents' newest; only that parent's cursor moves."""
    specs = _use(served, tmp_path, monkeypatch)
    _load(specs, served.name)
    before = {p["id"]: served.newest(p["id"]) for p in served.parents}
    target = served.parents[-1]["id"]  # its children are the oldest
    changed = dict(served.of(target)[0], title="changed")
    changed[served.cursor] = _later(before[target], 1)
    added = dict(changed, id=9999, title="added")
    added[served.cursor] = _later(before[target], 2)
    assert added[served.cursor] < max(before.values())  # a shared cursor would skip both
    served.upsert(changed)
    served.upsert(added)
    _load(specs, served.name)
    _assert_loaded_truth(served)

    served.api.clear()
    _load(specs, served.name)
    expected = {**before, target: added[served.cursor]}
    assert served.sent_since() == {p: {v} for p, v in expected.items()}


def test_cursors_come_back_from_the_warehouse_after_losing_local_state(
    served, tmp_path, monkeypatch
):
    """Deleting dlt's pipelines dir loses nothing: the per-parent cursors are restored from
    `_dlt_pipeline_state` in the warehouse, and a new child is still picked up."""
    specs = _use(served, tmp_path, monkeypatch)
    _load(specs, served.name)
    before = {p["id"]: served.newest(p["id"]) for p in served.parents}
    shutil.rmtree(tmp_path / "pipelines")
    target = served.parents[1]["id"]
    added = dict(served.of(target)[0], id=8888)
    added[served.cursor] = _ts(20)
    served.upsert(added)

    served.api.clear()
    _load(specs, served.name)
    _assert_loaded_truth(served)
    assert served.sent_since() == {p: {v} for p, v in before.items()}


def test_a_new_parent_starts_from_initial_value(served, tmp_path, monkeypatch):
    """A parent that appears later is asked from `initial_value`; the others from their own."""
    specs = _use(served, tmp_path, monkeypatch)
    _load(specs, served.name)
    before = {p["id"]: served.newest(p["id"]) for p in served.parents}
    served.parents.append({**served.parents[0], "id": 777})
    served.upsert({**served.children[0], "id": 7770, "parent_id": 777})

    served.api.clear()
    _load(specs, served.name)
    _assert_loaded_truth(served)
    assert served.sent_since() == {**{p: {v} for p, v in before.items()}, 777: {INITIAL}}


def _placeholders(endpoint: dict) -> None:
    del endpoint["incremental"]["start_param"]
    endpoint["params"] = {
        "since": "{incremental.start_value}",
        "from": "{incremental.initial_value}",
    }


def _end_value(endpoint: dict) -> None:
    endpoint["incremental"].update(end_param="until", end_value=_ts(12, 12))


def _param(endpoint: dict) -> None:
    incremental = endpoint.pop("incremental")
    del incremental["start_param"]
    endpoint["params"] = {"since": {"type": "incremental", **incremental}}


@dataclass(frozen=True)
class RequestForm:
    """A way to write a child's incremental, and what the second run must ask each parent."""

    name: str
    edit: Any
    second_since: str  # "own": each parent's newest child; else this value for every parent
    extra_query: dict = field(default_factory=dict)
    end: str | None = None


FORMS = [
    RequestForm("placeholders", _placeholders, "own", {"from": INITIAL}),
    RequestForm("type incremental param", _param, "own"),
    RequestForm(
        "end_value: closed range", _end_value, INITIAL, {"until": _ts(12, 12)}, _ts(12, 12)
    ),
]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_every_way_of_writing_a_child_incremental_is_kept_per_parent(
    form, served, tmp_path, monkeypatch
):
    """`{incremental.*}` placeholders, a `type: incremental` param and `end_param`/`end_value`
    are all filled per parent; a closed range asks every parent for it again each run."""
    spec = served.spec(concurrency=4)
    form.edit(spec["resources"][1]["endpoint"])
    write_spec(tmp_path / "specs", spec)
    use_specs(monkeypatch, tmp_path / "specs", {served.name: served.api.url})
    _load(tmp_path / "specs", served.name)
    _assert_loaded_truth(served, form.end)

    served.api.clear()
    _load(tmp_path / "specs", served.name)
    _assert_loaded_truth(served, form.end)
    for parent in served.parents:
        since = served.newest(parent["id"]) if form.second_since == "own" else form.second_since
        (call,) = served.api.calls_to(served.child_path(parent["id"]))
        assert call.query == {"since": since, **form.extra_query}


def test_an_incremental_child_materializes_alone(served, tmp_path, monkeypatch):
    """Selected without its parent: the parent drives the requests but is not written."""
    specs = _use(served, tmp_path, monkeypatch)
    (spec,) = load_specs(specs)
    key = AssetKey([served.name, served.child])
    (result,) = materialize_spec(
        build_definitions([spec]), spec, DagsterInstance.ephemeral(), keys=[key]
    )
    assert result.success
    assert table(served.name, served.child) == served.truth()[served.child]
    assert table(served.name, served.parent) is None


def test_an_incremental_child_of_a_partitioned_parent(served, tmp_path, monkeypatch):
    """A newer partition, then an older one: each window's parents get all their children,
    each asked from its own cursor (a shared one would skip the older window's children)."""
    for index, parent in enumerate(served.parents):
        parent["created"] = "2026-01-02" if index % 2 else "2026-01-01"
    served.parent_page = None
    spec = served.spec()
    spec["resources"][0]["partitions"] = {
        "type": "daily",
        "start": "2026-01-01",
        "cursor_path": "created",
    }
    write_spec(tmp_path / "specs", spec)
    use_specs(monkeypatch, tmp_path / "specs", {served.name: served.api.url})
    (spec,) = load_specs(tmp_path / "specs")
    defs = build_definitions([spec])
    (assets_def,) = load_definitions(defs, spec)
    for day in ("2026-01-02", "2026-01-01"):
        served.api.clear()
        result = materialize(
            [assets_def],
            resources=defs.resources,
            partition_key=day,
            instance=DagsterInstance.ephemeral(),
            run_config=QUIET,
        )
        assert result.success
        window = {p["id"] for p in served.parents if p["created"] == day}
        assert served.sent_since() == {p: {INITIAL} for p in window}
    _assert_loaded_truth(served)


# --------------------------------------------------------------------------- concurrency


def _load_with_concurrency(
    fake: ParentChildApi, concurrency: int, tmp_path: Path, monkeypatch
) -> dict[str, list[dict] | None]:
    """Two runs (with a change at the API between them) into a warehouse of their own."""
    fake.children = copy.deepcopy(fake.pristine)
    home = tmp_path / f"c{concurrency}"
    use_warehouse(monkeypatch, home / "w.duckdb")
    specs = home / "specs"
    write_spec(specs, fake.spec(concurrency=concurrency))
    use_specs(monkeypatch, specs, {fake.name: fake.api.url})
    _load(specs, fake.name)
    for parent in fake.parents[::2]:
        newer = _later(fake.newest(parent["id"]), 1)
        fake.upsert(
            dict(fake.of(parent["id"])[0], id=parent["id"] * 1000 + 1, **{fake.cursor: newer})
        )
    _load(specs, fake.name)
    _assert_loaded_truth(fake)
    return dataset_tables(fake.name)


@pytest.mark.parametrize("served", list(APIS), indirect=True)
def test_concurrency_never_changes_what_an_incremental_child_loads(served, tmp_path, monkeypatch):
    """`client.concurrency: 4` loads exactly the rows `1` loads (and both the API's truth)."""
    sequential = _load_with_concurrency(served, 1, tmp_path, monkeypatch)
    parallel = _load_with_concurrency(served, 4, tmp_path, monkeypatch)
    assert parallel == sequential


def _seed_specs_with(concurrency: int, directory: Path) -> Path:
    return copy_seed_specs(
        directory, edit=lambda raw: raw["client"].update(concurrency=concurrency)
    )


def test_concurrency_never_changes_what_the_seed_specs_load(
    sandbox_env, seed_partitions, tmp_path, monkeypatch
):
    """Every seed spec with `client.concurrency` 1 and 4: identical tables, row for row."""
    loaded = {}
    for concurrency in (1, 4):
        home = tmp_path / f"c{concurrency}"
        use_warehouse(monkeypatch, home / "w.duckdb")
        specs = load_specs(_seed_specs_with(concurrency, home / "specs"))
        defs = build_definitions(specs)
        instance = DagsterInstance.ephemeral()
        for spec in specs:
            results = materialize_spec(defs, spec, instance, with_checks=False)
            assert all(r.success for r in results), spec.name
        loaded[concurrency] = {s.name: dataset_tables(s.name) for s in specs}
    assert all(loaded[1].values())
    assert loaded[4] == loaded[1]


# --------------------------------------------------------------------------- per-parent rules

ROWS = [{"id": i, "at": at} for i, at in enumerate(["a", "b", "c", "c", "d", "e"])]


@dataclass(frozen=True)
class Rule:
    """One parent's stored cursor, the spec's options, and the rows it must keep."""

    name: str
    stored: dict
    options: dict
    kept: list[int]
    moves_to: str | None


RULES = [
    Rule("new parent: from initial_value", {}, {"initial_value": "b"}, [1, 2, 3, 4, 5], "e"),
    Rule(
        "closed start keeps the start, dedup by key",
        {"last_value": "c", "unique_hashes": []},
        {},
        [2, 3, 4, 5],
        "e",
    ),
    Rule("open start drops the start", {"last_value": "c"}, {"range_start": "open"}, [4, 5], "e"),
    Rule(
        "end_value: closed range, no cursor kept",
        {"last_value": "d"},
        {"initial_value": "b", "end_value": "d"},
        [1, 2, 3],
        None,
    ),
    Rule(
        "range_end closed keeps the end",
        {},
        {"initial_value": "b", "end_value": "d", "range_end": "closed"},
        [1, 2, 3, 4],
        None,
    ),
    Rule("nothing newer: cursor stays", {"last_value": "e", "unique_hashes": []}, {}, [5], "e"),
]


def _parent(rule: Rule, cursors: dict) -> ParentCursor:
    cursor = ChildCursorSpec(cursor_path="at", **rule.options)
    fetcher = ParentFetcher("things", {}, cursor, ("id",))
    return ParentCursor(fetcher, "p1", cursors, dict(rule.stored))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_a_parent_keeps_rows_by_dlt_incremental_rules(rule):
    """Which rows one parent keeps, and where its cursor ends, for each supported option."""
    cursors = {"p1": rule.stored} if rule.stored else {}
    parent = _parent(rule, cursors)
    assert [r["id"] for r in ROWS if parent.keep(r)] == rule.kept
    parent.commit()
    assert (cursors.get("p1") or {}).get("last_value") == (
        rule.moves_to or rule.stored.get("last_value")
    )


def test_rows_at_the_cursor_already_loaded_are_not_loaded_again():
    """Closed start: a row at the stored cursor is kept only if its key was not loaded."""
    cursors: dict = {}
    first = _parent(Rule("", {}, {}, [], None), cursors)
    assert all(first.keep(r) for r in ROWS)
    first.commit()
    again = _parent(Rule("", cursors["p1"], {}, [], None), cursors)
    assert [r["id"] for r in [*ROWS, {"id": 9, "at": "e"}] if again.keep(r)] == [9]


def test_a_child_row_without_its_cursor_fails_in_one_line():
    parent = _parent(Rule("", {}, {}, [], None), {})
    with pytest.raises(CursorError) as error:
        parent.keep({"id": 7})
    assert str(error.value) == (
        "resource things: a row of parent p1 has no `at` (the incremental cursor_path); set"
        " on_cursor_value_missing: include or exclude to load or skip such rows"
    )


def test_lag_asks_from_before_the_cursor_and_never_moves_it_back():
    cursors = {"p1": {"last_value": "2026-10-10T00:00:00Z"}}
    options = {"lag": 86400, "initial_value": INITIAL}
    parent = _parent(Rule("", cursors["p1"], options, [], None), cursors)
    assert parent.window().last_value == "2026-10-09T00:00:00Z"
    assert parent.keep({"id": 1, "at": "2026-10-09T12:00:00Z"})
    parent.commit()
    assert cursors["p1"]["last_value"] == "2026-10-10T00:00:00Z"


# --------------------------------------------------------------------------- validation

BAD = [
    (
        {"last_value_func": "min"},
        "endpoint.incremental.last_value_func: a child's cursor is kept"
        " per parent row as the newest value seen; only 'max' is supported on a child resource,"
        " got 'min'",
    ),
    (
        {"allow_external_schedulers": True},
        "endpoint.incremental.allow_external_schedulers: not"
        " supported on a child resource (its cursor is kept per parent row); use partitions on"
        " the parent for scheduled windows",
    ),
    (
        {"cursor_path": None},
        "endpoint.incremental.cursor_path: is required: the field of each"
        " child row that holds the cursor",
    ),
]


@pytest.mark.parametrize(("change", "line"), BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_unsupported_child_cursor_options_fail_validation_in_one_line(change, line, tmp_path):
    spec = tracker().spec()
    incremental = spec["resources"][1]["endpoint"]["incremental"]
    incremental.update(change)
    if change.get("cursor_path", "") is None:
        del incremental["cursor_path"]
    write_spec(tmp_path, spec)
    with pytest.raises(SpecValidationError) as error:
        load_specs(tmp_path)
    assert str(error.value).endswith(f"tracker.yaml: resource 'issues': {line}")
    assert "\n" not in str(error.value)
