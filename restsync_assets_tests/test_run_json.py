"""What `restsync run` says it did (issue 20, item 3): `--json`, the table's figures, every
failure, the wait for another run's lock, `--verbose`.

The `library` API of `test_incremental_parents` on loopback, loaded into DuckDB (and one case
on PostgreSQL); the tables are compared with the API's truth as a multiset, and the requests
the summary counts with the requests the API received.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator

import pytest

from restsync_assets.cli import main
from restsync_assets.cli.run import _Console, run
from restsync_assets.runtime.locks import duckdb_lock_path, exclusive

from .fake_servers import JsonApi, Reply
from .support import canonical, table, use_spec, use_specs, write_spec
from .test_incremental_parents import Library, _rows

CHECKS = {"primary_key": "ok", "row_count": "ok"}


@pytest.fixture
def library() -> Iterator[Library]:
    fake = Library()
    with fake.api:
        yield fake


@pytest.fixture
def specs(library, warehouse, tmp_path, monkeypatch):
    return use_spec(monkeypatch, tmp_path / "specs", library.spec(), library.api.url)


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["run", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def by_asset(report: dict) -> dict[str, dict]:
    return {a["asset"]: a for a in report["assets"]}


@pytest.mark.parametrize("where", ["duckdb", "postgres"])
def test_json_reports_rows_loaded_by_this_run_and_the_requests_sent(
    where, library, specs, warehouse, request, capsys, retry_clock
):
    """`--json` prints one object: per asset the rows this run loaded (then 0 on a run that
    found nothing new) and the rows in the table, the requests the API received for it (one
    503 retried counts as a retry), the lock wait and each check's result; no failures."""
    if where == "postgres":
        request.getfixturevalue("postgres_warehouse")
    answers = iter([Reply({"error": "busy"}, status=503)])
    authors = library.api.routes[0]
    handler = authors[1]
    library.api.routes[0] = (authors[0], lambda r: next(answers, None) or handler(r))

    code, first = run_json(capsys, "library")
    assert code == 0 and first["ok"] and first["failures"] == []
    assert _rows(where, "books") == canonical(dict(b) for b in library.books)
    book_calls = len(library.api.calls_to(r"/authors/\d+/books"))
    assert by_asset(first) == {
        "library/authors": {
            "asset": "library/authors",
            "status": "ok",
            "rows_loaded": len(library.authors),
            "rows_in_table": len(library.authors),
            "requests": 2,
            "retries": 1,
            "lock_wait_s": 0.0,
            "seconds": by_asset(first)["library/authors"]["seconds"],
            "checks": CHECKS,
        },
        "library/books": {
            "asset": "library/books",
            "status": "ok",
            "rows_loaded": len(library.books),
            "rows_in_table": len(library.books),
            "requests": book_calls,
            "retries": 0,
            "lock_wait_s": 0.0,
            "seconds": by_asset(first)["library/books"]["seconds"],
            "checks": CHECKS,
        },
    }

    library.api.clear()
    code, second = run_json(capsys, "library")
    assert code == 0
    books = by_asset(second)["library/books"]
    assert (books["rows_loaded"], books["rows_in_table"]) == (0, len(library.books))
    assert books["requests"] == len(library.api.calls_to(r"/authors/\d+/books"))
    assert by_asset(second)["library/authors"]["rows_loaded"] == 0


def test_every_failure_is_a_line_of_its_own(library, warehouse, tmp_path, monkeypatch, capsys):
    """Two specs whose runs fail (their API answers 404): `failures` holds both lines, and
    the human output ends with one `error:` line for each."""
    directory = tmp_path / "specs"
    for name in ("shelf_a", "shelf_b"):
        spec = library.spec()
        spec["name"] = name
        spec["resources"][0]["endpoint"]["path"] = f"/{name}"
        write_spec(directory, spec)
    use_specs(monkeypatch, directory, {n: library.api.url for n in ("shelf_a", "shelf_b")})

    code, report = run_json(capsys, "--no-checks")
    assert code == 1 and not report["ok"]
    assert [a["status"] for a in report["assets"]] == ["FAILED"] * 4
    assert len(report["failures"]) == 2
    for name, line in zip(("shelf_a", "shelf_b"), report["failures"], strict=True):
        assert line.startswith(f"{name}: ") and "404" in line

    assert main(["run", "--no-checks"]) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {line}" for line in report["failures"]]


def test_a_wait_for_another_runs_lock_is_a_live_line_and_counted(
    library, specs, warehouse, monkeypatch, capsys
):
    """While another process holds the warehouse's lock the run says it waits (a live line,
    before the run ends); the wait is in `lock_wait_s` and the rows are loaded after it."""
    said = threading.Event()
    waiting = _Console.waiting

    def noticed(self, spec, message):
        waiting(self, spec, message)
        said.set()

    monkeypatch.setattr(_Console, "waiting", noticed)
    result: list[int] = []
    with exclusive(duckdb_lock_path(warehouse)):
        worker = threading.Thread(
            target=lambda: result.append(main(["run", "library/authors", "--json"]))
        )
        worker.start()
        assert said.wait(60), "the run never said it waits"
        assert not result  # still waiting
    worker.join(120)
    assert result == [0]
    captured = capsys.readouterr()
    waited = f"   library: waiting for another restsync run to release {warehouse}.lock"
    assert waited in captured.err  # with --json, progress goes to stderr
    (authors,) = json.loads(captured.out)["assets"]
    assert authors["lock_wait_s"] > 0
    assert _rows("duckdb", "authors") == canonical(dict(a) for a in library.authors)


def test_verbose_adds_dagsters_and_dlts_log_lines(library, specs, warehouse, capsys):
    """Quiet by default; `--verbose` prints the run's own log lines (Dagster's console)."""
    assert main(["run", "library/authors", "--no-checks"]) == 0
    quiet = capsys.readouterr()
    assert "library: loading authors into" not in quiet.out + quiet.err
    assert main(["run", "library/authors", "--no-checks", "--verbose"]) == 0
    loud = capsys.readouterr()
    assert "library: loading authors into" in loud.out + loud.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_shows_rows_requests_and_the_share_of_an_announced_total(
    warehouse, tmp_path, monkeypatch
):
    """Offset pages that announce a `total`: on a terminal each progress line shows the rows
    and requests so far and the share of the total done; the table equals the API's rows."""
    rows = [{"id": n, "name": f"item {n}"} for n in range(1, 6)]

    def items(request):
        offset, limit = request.number("offset", 0), request.number("limit", 2)
        return {"items": rows[offset : offset + limit], "total": len(rows)}

    api = JsonApi({"GET /items": items})
    spec = {
        "name": "paged",
        "client": {"base_url": "http://api.invalid"},
        "resources": [
            {
                "name": "items",
                "endpoint": {
                    "path": "/items",
                    "data_selector": "items",
                    "paginator": {"type": "offset", "limit": 2, "total_path": "total"},
                },
                "primary_key": "id",
            }
        ],
    }
    with api:
        write_spec(tmp_path / "specs", spec)
        use_specs(monkeypatch, tmp_path / "specs", {"paged": api.url})
        out = _Terminal()
        assert run(["paged"], with_checks=False, out=out).ok
    lines = re.split(r"\r\x1b\[K", out.getvalue())
    # the rate (`; N rows/s`) joins once a second has passed: timing, not checked here
    progress = [re.sub(r"; [\d,]+ rows/s$", "", p) for p in lines if "so far" in p]
    # pages fetched ahead while dlt takes one reach it joined (read-ahead), so which counts
    # show depends on timing; each line is whole and true, and the last one is the total
    shown = [
        re.fullmatch(r"   paged: so far items (\d) rows in (\d) requests? \((\d+)%\)", p)
        for p in progress
    ]
    assert shown and all(shown), progress
    counts = [(int(m[1]), int(m[2]), int(m[3])) for m in shown]
    assert all(share == rows_so_far * 100 // 5 for rows_so_far, _, share in counts), progress
    assert [c[0] for c in counts] == sorted({c[0] for c in counts}), progress
    assert counts[-1] == (5, 3, 100), progress
    assert table("paged", "items") == canonical(rows)
