"""Children of an incremental parent are asked for every known parent (issue 18, item 4).

A small `library` API on 127.0.0.1 (`fake_servers.JsonApi`): `GET /authors?updated_since=` (the
authors changed since a cursor, inclusive) and `GET /authors/{id}/books?since=` (an author's
books changed since a cursor, inclusive). Both resources are incremental. A new book under
an author that did not change is the case an incremental parent used to starve: the parent's
run does not return that author, so its books were never asked for. Every load goes through
Dagster's `materialize` into DuckDB or PostgreSQL and the tables are compared with the API's
truth as a multiset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance

from restsync_assets.cli.run import materialize_spec
from restsync_assets.definitions import build_definitions
from restsync_assets.runtime.arrow_pages import DLT_COLUMNS
from restsync_assets.specs import load_specs

from .fake_servers import JsonApi, Request
from .real_servers import pg_table
from .support import canonical, refusal, table, use_spec

INITIAL = "2000-01-01T00:00:00Z"


def _ts(day: int) -> str:
    return f"2026-11-{day:02d}T00:00:00Z"


@dataclass
class Library:
    """Authors and their books, each with an `updated_at`; serves both `since` a cursor."""

    authors: list[dict] = field(
        default_factory=lambda: [
            {"id": 1, "name": "Ada", "updated_at": _ts(1)},
            {"id": 2, "name": "Grace", "updated_at": _ts(2)},
            {"id": 3, "name": "Edsger", "updated_at": _ts(3)},
        ]
    )
    books: list[dict] = field(
        default_factory=lambda: [
            {"id": 10, "author_id": 1, "title": "Notes", "updated_at": _ts(4)},
            {"id": 20, "author_id": 2, "title": "Compilers", "updated_at": _ts(5)},
            {"id": 21, "author_id": 2, "title": "COBOL", "updated_at": _ts(6)},
            {"id": 30, "author_id": 3, "title": "Goto", "updated_at": _ts(7)},
        ]
    )
    reviews: list[dict] = field(
        default_factory=lambda: [
            {"id": 100, "book_id": 10, "stars": 5, "updated_at": _ts(8)},
            {"id": 300, "book_id": 30, "stars": 2, "updated_at": _ts(9)},
        ]
    )
    api: JsonApi = field(init=False)

    def __post_init__(self) -> None:
        self.api = JsonApi(
            {
                "GET /authors": self._authors,
                "GET /authors/{id}/books": self._books_of,
                "GET /books/{id}/reviews": self._reviews_of,
            }
        )

    def _reviews_of(self, request: Request) -> Any:
        since = request.query.get("since", "")
        book = int(request.params["id"])
        return sorted(
            (r for r in self.reviews if r["book_id"] == book and r["updated_at"] >= since),
            key=_order,
        )

    def _authors(self, request: Request) -> Any:
        since = request.query.get("updated_since", "")
        return sorted((a for a in self.authors if a["updated_at"] >= since), key=_order)

    def _books_of(self, request: Request) -> Any:
        since = request.query.get("since", "")
        author = int(request.params["id"])
        return sorted(
            (b for b in self.books if b["author_id"] == author and b["updated_at"] >= since),
            key=_order,
        )

    def asked_books_of(self) -> set[int]:
        """The authors whose books were asked for since the last `api.clear()`."""
        return {int(c.path.split("/")[2]) for c in self.api.calls_to(r"/authors/\d+/books")}

    def spec(
        self,
        parents: str | None = None,
        write_disposition: str = "merge",
        incremental_books: bool = True,
    ) -> dict:
        books = _incremental(
            "books", "/authors/{resources.authors.id}/books", "since", write_disposition
        )
        if not incremental_books:  # every book of each author asked for, each run
            del books["endpoint"]["incremental"]
        if parents is not None:
            books["parents"] = parents
        authors = _incremental("authors", "/authors", "updated_since")
        return {
            "name": "library",
            "client": {"base_url": "http://api.invalid"},
            "resources": [authors, books],
        }


def _incremental(
    name: str, path: str, start_param: str, write_disposition: str = "merge"
) -> dict[str, Any]:
    """Resource `name` of the library spec: `path` in one page, incremental on `updated_at`
    (sent as `start_param`), keyed by `id`."""
    return {
        "name": name,
        "endpoint": {
            "path": path,
            "paginator": "single_page",
            "incremental": {
                "cursor_path": "updated_at",
                "start_param": start_param,
                "initial_value": INITIAL,
            },
        },
        "primary_key": "id",
        "write_disposition": write_disposition,
    }


def _order(row: dict) -> tuple:
    return (row["updated_at"], row["id"])


def _later(day: int) -> str:
    return (dt.datetime(2026, 11, 1) + dt.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def library() -> Iterator[Library]:
    fake = Library()
    with fake.api:
        yield fake


def _rows(destination: str, name: str) -> list[dict] | None:
    """`library.<name>` without dlt's columns, in one order (None: no such table)."""
    if destination == "duckdb":
        return table("library", name)
    import os

    database = os.environ["DESTINATION__POSTGRES__CREDENTIALS"].rsplit("/", 1)[1]
    rows = pg_table(database, "library", name)
    if rows is None:
        return None
    return canonical({k: v for k, v in r.items() if k not in DLT_COLUMNS} for r in rows)


def _use(library: Library, tmp_path: Path, monkeypatch, **options: Any) -> Path:
    return use_spec(monkeypatch, tmp_path / "specs", library.spec(**options), library.api.url)


def _load(directory: Path, keys: list[AssetKey] | None = None) -> None:
    (spec,) = load_specs(directory)
    results = materialize_spec(
        build_definitions([spec]), spec, DagsterInstance.ephemeral(), keys=keys
    )
    assert all(r.success for r in results)


def _truth(rows: list[dict]) -> list[dict]:
    return canonical(dict(r) for r in rows)


def _new_book_under_an_unchanged_author(library: Library) -> dict:
    """A book of author 1, whose own row does not change (the parent's run skips it)."""
    book = {"id": 11, "author_id": 1, "title": "Sketch", "updated_at": _later(10)}
    library.books.append(book)
    return book


@pytest.mark.parametrize("write_disposition", ["merge", "append"])
def test_a_new_child_of_an_unchanged_parent_is_loaded(
    destination, library, write_disposition, tmp_path, monkeypatch
):
    """Parent and child both incremental: run 1 loads everything (no parent table yet); a
    new book under an unchanged author is loaded by run 2, each author asked from its own
    cursor, and the books table equals the API's truth as a multiset (no row doubled)."""
    specs = _use(library, tmp_path, monkeypatch, write_disposition=write_disposition)
    _load(specs)
    assert _rows(destination, "books") == _truth(library.books)

    _new_book_under_an_unchanged_author(library)
    library.api.clear()
    _load(specs)
    assert _rows(destination, "authors") == _truth(library.authors)
    assert _rows(destination, "books") == _truth(library.books)
    (call,) = library.api.calls_to("/authors/1/books")
    assert call.query == {"since": _ts(4)}  # author 1's own cursor, not the run's newest


@pytest.mark.parametrize("write_disposition", ["replace", "merge"])
def test_a_child_without_a_cursor_sees_every_parent(
    destination, library, write_disposition, tmp_path, monkeypatch
):
    """A child without its own incremental under an incremental parent (`parents: all`, the
    default): run 2, where only author 2 changed, asks every author's books, so the books
    table equals the API's truth as a multiset, with `replace` (which used to keep only the
    changed author's books) and `merge` (which missed the new book of an unchanged author)."""
    specs = _use(
        library, tmp_path, monkeypatch, write_disposition=write_disposition, incremental_books=False
    )
    _load(specs)
    assert _rows(destination, "books") == _truth(library.books)

    _new_book_under_an_unchanged_author(library)
    library.authors[1]["updated_at"] = _later(11)
    library.books[1]["title"] = "Compilers, 2nd ed."
    library.api.clear()
    _load(specs)
    assert library.asked_books_of() == {1, 2, 3}
    assert _rows(destination, "authors") == _truth(library.authors)
    assert _rows(destination, "books") == _truth(library.books)


def _concurrency(spec: dict) -> None:
    spec["client"]["concurrency"] = 4


def _carried_name(spec: dict) -> None:
    spec["resources"][1]["include_from_parent"] = ["name"]


def _parent_transform(spec: dict) -> None:
    spec["resources"][0]["add_fields"] = {"shelf": "main"}


SHAPES = {
    "concurrency 4": _concurrency,
    "include_from_parent": _carried_name,
    "parent with transforms": _parent_transform,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_parent_is_asked_in_each_spec_shape(shape, library, warehouse, tmp_path, monkeypatch):
    """The new book under an unchanged author is loaded with `client.concurrency: 4`, with
    `include_from_parent` (the author's carried field read back from the warehouse) and with
    record transforms on the parent."""
    spec = library.spec()
    SHAPES[shape](spec)
    use_spec(monkeypatch, tmp_path / "specs", spec, library.api.url)
    _load(tmp_path / "specs")
    _new_book_under_an_unchanged_author(library)
    _load(tmp_path / "specs")
    names = {a["id"]: a["name"] for a in library.authors}
    carried = shape == "include_from_parent"
    expected = [
        {**b, "_authors_name": names[b["author_id"]]} if carried else b for b in library.books
    ]
    assert _rows("duckdb", "books") == _truth(expected)


def test_a_grandchild_of_unchanged_parents_is_loaded(library, warehouse, tmp_path, monkeypatch):
    """Three incremental levels (authors, books, reviews): a new review of an unchanged book
    of an unchanged author is loaded, because `books` tells `reviews` when it is done and
    `reviews` then asks every book in the warehouse."""
    spec = library.spec()
    spec["resources"].append(
        _incremental("reviews", "/books/{resources.books.id}/reviews", "since")
    )
    use_spec(monkeypatch, tmp_path / "specs", spec, library.api.url)
    _load(tmp_path / "specs")
    library.reviews.append({"id": 101, "book_id": 10, "stars": 4, "updated_at": _later(12)})
    _load(tmp_path / "specs")
    assert _rows("duckdb", "reviews") == _truth(library.reviews)
    assert _rows("duckdb", "books") == _truth(library.books)


def test_parents_changed_asks_only_the_parents_the_parent_run_returned(
    destination, library, tmp_path, monkeypatch
):
    """`parents: changed`: only the authors the parent's incremental run returned are asked
    (the documented risk: a new book under an unchanged author is not loaded), until that
    author changes."""
    specs = _use(library, tmp_path, monkeypatch, parents="changed")
    _load(specs)
    book = _new_book_under_an_unchanged_author(library)

    library.api.clear()
    _load(specs)
    # dlt's incremental drops the newest author the API returns again (a row at the cursor,
    # already loaded): no author changed, so no author's books are asked for
    assert library.asked_books_of() == set()
    assert _rows(destination, "books") == _truth(b for b in library.books if b is not book)

    library.authors[0]["updated_at"] = _later(11)
    _load(specs)
    assert _rows(destination, "books") == _truth(library.books)


def test_a_child_materialized_alone_still_sees_every_parent(
    library, warehouse, tmp_path, monkeypatch
):
    """Parent and child loaded once; then the child alone (parent asset not selected): the
    parent drives it with a full scan, so the new book under an unchanged author is loaded,
    and the parent table is left as it was."""
    specs = _use(library, tmp_path, monkeypatch)
    _load(specs)
    authors = _rows("duckdb", "authors")
    _new_book_under_an_unchanged_author(library)

    child = [AssetKey(["library", "books"])]
    _load(specs, child)
    assert _rows("duckdb", "books") == _truth(library.books)
    assert _rows("duckdb", "authors") == authors


def test_a_child_materialized_first_alone_leaves_the_parent_to_load_later(
    library, warehouse, tmp_path, monkeypatch
):
    """The child alone on an empty warehouse (no parent table: this run's parents drive it),
    then both: the parent's table gets every author, the books stay the API's truth."""
    specs = _use(library, tmp_path, monkeypatch)
    _load(specs, [AssetKey(["library", "books"])])
    assert _rows("duckdb", "books") == _truth(library.books)
    assert _rows("duckdb", "authors") is None

    _load(specs)
    assert _rows("duckdb", "authors") == _truth(library.authors)
    assert _rows("duckdb", "books") == _truth(library.books)


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (
            "sometimes",
            "resource 'books': parents: unknown value 'sometimes'; allowed: all, changed",
        ),
    ],
)
def test_an_unknown_parents_value_fails_in_one_line(raw, line, tmp_path):
    """`parents:` takes `all` or `changed`; anything else is one line naming the values."""
    spec = Library().spec(parents=raw)
    assert refusal(tmp_path, spec).endswith(line)


def test_parents_on_a_top_level_resource_fails_in_one_line(tmp_path):
    spec = Library().spec()
    spec["resources"][0]["parents"] = "all"
    assert refusal(tmp_path, spec).endswith(
        "resource 'authors': parents: parents needs a parent resource (it says which parents a"
        " child is asked for)"
    )
