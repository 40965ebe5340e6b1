"""`restsync run SELECTION --full-refresh` (issue 20, item 1) and the advice that leads to it.

The `library` API of `test_incremental_parents` (authors, and each author's books, both
incremental; the books keep one cursor per author), each book with a list of tags (the
nested table `books__tags`). Rows deleted in the warehouse, a duplicate inserted, a table
dropped by hand: a plain run cannot repair any of it (the cursors are past those rows, dlt's
schema still lists the dropped table); `--full-refresh` drops the selected tables and their
state and loads them again, and the tables equal the API's truth as a multiset. The parent
that only drives a selected child is neither dropped nor reset. DuckDB and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import duckdb
import pytest

from restsync_assets.cli import main

from .real_servers import pg_query as postgres_sql
from .support import canonical, use_spec
from .test_incremental_parents import Library, _rows, _ts


@pytest.fixture
def library() -> Iterator[Library]:
    fake = Library()
    for book in fake.books:
        book["tags"] = [f"t{book['id']}", "shelf"]
    with fake.api:
        yield fake


@pytest.fixture
def specs(library, destination, tmp_path, monkeypatch):
    return use_spec(monkeypatch, tmp_path / "specs", library.spec(), library.api.url)


def sql(destination: str, request, statement: str) -> list[tuple]:
    """Run `statement` in the test's warehouse (`library.` names the dataset)."""
    if destination == "postgres":
        database = request.getfixturevalue("postgres_warehouse")
        return postgres_sql(database, statement) or []
    path = request.getfixturevalue("warehouse")
    with duckdb.connect(str(path)) as con:
        con.execute(statement)
        return con.fetchall() if con.description else []


def books_truth(library: Library) -> list[dict]:
    return canonical({k: v for k, v in b.items() if k != "tags"} for b in library.books)


def tag_count(destination: str, request) -> int:
    return sql(destination, request, "select count(*) from library.books__tags")[0][0]


def authors_loads(destination: str, request) -> list[tuple]:
    return sql(destination, request, "select id, _dlt_load_id from library.authors order by id")


def test_full_refresh_restores_deleted_and_duplicated_rows_of_an_incremental_child(
    library, specs, destination, request, capsys
):
    """Books (per-parent cursors, nested tags) lose two rows and gain a duplicate in the
    warehouse: a plain run leaves them so; `restsync run library/books --full-refresh` makes
    books and books__tags equal the API's truth again; the authors table (the parent, read to
    drive the books) keeps its rows, its loads and its cursor."""
    assert main(["run", "library", "--no-checks"]) == 0
    authors_before = authors_loads(destination, request)
    sql(destination, request, "delete from library.books where id in (20, 30)")
    sql(destination, request, "insert into library.books select * from library.books where id = 10")
    assert main(["run", "library/books", "--no-checks"]) == 0
    assert _rows(destination, "books") != books_truth(library)  # a plain run cannot repair

    capsys.readouterr()
    assert main(["run", "library/books", "--full-refresh"]) == 0
    out = capsys.readouterr().out
    assert "full refresh" in out.splitlines()[0]
    assert _rows(destination, "books") == books_truth(library)
    assert tag_count(destination, request) == 2 * len(library.books)
    assert _rows(destination, "authors") == canonical(dict(a) for a in library.authors)
    assert authors_loads(destination, request) == authors_before  # the parent not reloaded

    library.api.clear()  # the books' cursors were stored again: a next run asks from them
    assert main(["run", "library/books", "--no-checks"]) == 0
    (call,) = library.api.calls_to("/authors/2/books")
    assert call.query == {"since": _ts(6)}


def test_full_refresh_recreates_a_table_dropped_by_hand(
    library, specs, destination, request, capsys
):
    """`DROP TABLE library.books` by hand: a plain run does not bring it back and the check
    names the command that does; `restsync run library/books --full-refresh` restores it,
    equal to the API's truth, and its checks pass."""
    assert main(["run", "library", "--no-checks"]) == 0
    sql(destination, request, "drop table library.books__tags")
    sql(destination, request, "drop table library.books")
    assert main(["run", "library/books", "--no-checks"]) == 0
    assert _rows(destination, "books") is None  # dlt's schema still lists it: not created

    capsys.readouterr()
    assert main(["check", "library/books"]) == 1
    out = capsys.readouterr().out
    assert "restsync run library/books --full-refresh" in out
    assert re.search(r"reload \(`restsync run library/books --full-refresh`\)", out)

    assert main(["run", "library/books", "--full-refresh"]) == 0
    assert _rows(destination, "books") == books_truth(library)
    assert tag_count(destination, request) == 2 * len(library.books)
    assert main(["check", "library/books"]) == 0


def test_the_run_tag_alone_makes_a_dagster_run_a_full_refresh(
    library, warehouse, tmp_path, monkeypatch
):
    """What the UI launches: a Dagster run of the books asset tagged `restsync/full_refresh:
    "true"` (no restsync command involved) restores deleted book rows; the same run untagged
    does not."""
    from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

    from restsync_assets.cli.run import QUIET, load_definitions
    from restsync_assets.definitions import build_definitions
    from restsync_assets.runtime.full_refresh import FULL_REFRESH_TAG
    from restsync_assets.specs import load_specs

    use_spec(monkeypatch, tmp_path / "specs", library.spec(), library.api.url)
    (spec,) = load_specs(tmp_path / "specs")
    defs = build_definitions([spec])
    assets = list(load_definitions(defs, spec))

    def launch(tags: dict[str, str]) -> None:
        result = materialize(
            assets,
            resources=defs.resources,
            instance=DagsterInstance.ephemeral(),
            selection=AssetSelection.assets(AssetKey(["library", "books"])),
            tags=tags,
            run_config=QUIET,
        )
        assert result.success

    assert main(["run", "library", "--no-checks"]) == 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from library.books where id = 20")
    launch({})
    assert _rows("duckdb", "books") != books_truth(library)
    launch({FULL_REFRESH_TAG: "true"})
    assert _rows("duckdb", "books") == books_truth(library)
