"""dlt parity cases, as data: each is a dlt `rest_api_source` config against the blog mock.

`client.base_url` is relative (`/api/`): the test joins it with the mock's address. The
configs cover what dlt's own rest_api tests exercise; related configs share a case as
resources of one source (one load each side instead of one per config: a load costs about
a second of fixed dlt and Dagster overhead, the rows almost nothing), and every resource
is its own table, so a difference names the config it comes from.

Each case is loaded by restsync (YAML spec + `name`, through Dagster) and by plain dlt,
and every table must match row for row, unless `mock_truth` names a table whose truth is
the mock's own data (see `MockTruth`). `runs: 2` loads twice, the mock grown in between
(`Blog.grow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .mock_api import stamp


@dataclass(frozen=True)
class MockTruth:
    """The table must hold exactly the mock's `collection` rows (compared on `columns`).

    For incremental CHILD resources plain dlt is not the truth: it keeps one cursor for all
    parents (dlt issue 2429), so a parent's rows older than another parent's newest are
    skipped. restsync keeps one cursor per parent; the truth is every child row, once.
    """

    collection: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ParityCase:
    name: str
    config: dict[str, Any]
    runs: int = 1
    mock_truth: dict[str, MockTruth] = field(default_factory=dict)


BASE = "/api/"
NEXT_PAGE = {"type": "json_link", "next_url_path": "next_page"}
DATA_NEXT_PAGE = {"data_selector": "data", "paginator": NEXT_PAGE}
POSTS = {"name": "posts", "endpoint": {"path": "posts", **DATA_NEXT_PAGE}}
PAGE_NUMBER = {"type": "page_number", "base_page": 1, "total_path": "total_pages"}


def source(*resources: Any, **extra: Any) -> dict[str, Any]:
    """A dlt config with the relative base and these resources (`extra`: more top-level keys)."""
    client = {"base_url": BASE, **extra.pop("client", {})}
    return {"client": client, "resources": list(resources), **extra}


def resource(name: str, path: str, hints: dict | None = None, **endpoint: Any) -> dict[str, Any]:
    """`{name, endpoint: {path, **endpoint}, **hints}`."""
    return {"name": name, "endpoint": {"path": path, **endpoint}, **(hints or {})}


def by_post_id(field_name: str = "id") -> dict[str, Any]:
    return {"post_id": {"type": "resolve", "resource": "posts", "field": field_name}}


CASES = [
    ParityCase(
        "paginators",
        source(
            resource("json_link", "posts", **DATA_NEXT_PAGE),
            resource("header_link", "posts_header_link", paginator="header_link"),
            resource(
                "offset",
                "posts_offset",
                data_selector="items",
                paginator={"type": "offset", "limit": 5, "total_path": "total"},
            ),
            resource(
                "page_number",
                "posts",
                data_selector="data",
                params={"per_page": 4},
                paginator=PAGE_NUMBER,
            ),
            resource(
                "cursor",
                "posts_cursor",
                data_selector="results",
                paginator={
                    "type": "cursor",
                    "cursor_path": "cursors.next",
                    "cursor_param": "cursor",
                },
            ),
            resource(
                "header_cursor",
                "posts_header_cursor",
                paginator={
                    "type": "header_cursor",
                    "cursor_key": "next_cursor",
                    "cursor_param": "page",
                },
            ),
            # users hold nested lists: users__addresses, users__profile__tags
            resource("single_page", "users", data_selector="users", paginator="single_page"),
            {"name": "auto_detected", "endpoint": "posts_auto"},
            resource("auto", "posts_header_link", paginator="auto"),
            resource(
                "post_json_body",
                "posts/search",
                method="POST",
                json={"page_size": 4, "filter": {"min_id": 3}},
                data_selector="data",
                paginator={**PAGE_NUMBER, "page_body_path": "page"},
            ),
        ),
    ),
    ParityCase(
        "children",
        source(
            POSTS,
            resource(
                "resolve_param", "posts/{post_id}/comments", params=by_post_id(), **DATA_NEXT_PAGE
            ),
            resource(
                "path_placeholder",
                "posts/{resources.posts.id}/comments",
                hints={"include_from_parent": ["title", "created_at"]},
                **DATA_NEXT_PAGE,
            ),
            resource("query_param", "post_comments", params={"post_id": "{resources.posts.id}"}),
            resource(
                "header", "post_comments_via_headers", headers={"post_id": "{resources.posts.id}"}
            ),
            resource(
                "json_body",
                "post_comments",
                method="POST",
                json={"post_id": "{resources.posts.id}"},
            ),
            resource("single_entity", "posts/{post_id}", params=by_post_id()),
            resource(
                "not_found_ignored",
                "posts/{resources.posts.id}/details_404",
                response_actions=[{"status_code": 404, "action": "ignore"}],
            ),
            resource(
                "content_ignored",
                "posts/{resources.posts.id}/status",
                response_actions=[{"content": "archived", "action": "ignore"}],
            ),
            # issue 8: path placeholders filled from plain params (and popped from the query)
            resource(
                "repos",
                "orgs/{org}/repos",
                params={"org": "acme", "per_page": 2},
                **DATA_NEXT_PAGE,
            ),
            resource(
                "repo_issues",
                "orgs/{org}/repos/{repo_id}/issues",
                params={
                    "org": "acme",
                    "repo_id": {"type": "resolve", "resource": "repos", "field": "id"},
                },
            ),
        ),
    ),
    ParityCase(
        "incremental",
        source(
            resource(
                "start_and_end_params",
                "events",
                incremental={
                    "cursor_path": "updated_at",
                    "start_param": "since",
                    "end_param": "until",
                    "initial_value": stamp(3),
                    "end_value": stamp(15),
                },
                **DATA_NEXT_PAGE,
            ),
            resource(
                "start_param_merge",
                "events",
                hints={"write_disposition": "merge", "primary_key": "id"},
                incremental={
                    "cursor_path": "updated_at",
                    "start_param": "since",
                    "initial_value": stamp(2),
                },
                **DATA_NEXT_PAGE,
            ),
            resource(
                "placeholder_in_params",
                "events",
                params={"since": "{incremental.start_value}"},
                incremental={"cursor_path": "updated_at", "initial_value": stamp(5)},
                **DATA_NEXT_PAGE,
            ),
            POSTS,
            resource(
                "comments",
                "posts/{resources.posts.id}/comments",
                incremental={
                    "cursor_path": "created_at",
                    "start_param": "since",
                    "initial_value": stamp(0),
                },
                **DATA_NEXT_PAGE,
            ),
        ),
        runs=2,
        mock_truth={"comments": MockTruth("comments", ("id", "post_id", "body", "created_at"))},
    ),
    ParityCase(
        "table_shapes",
        source(
            # nested lists become child tables (reactions__reactions, ...__by)
            {"name": "reactions", "endpoint": "posts_with_reactions"},
            {
                "name": "reactions_nesting_1",
                "endpoint": "posts_with_reactions",
                "max_table_nesting": 1,
            },
            resource("dotted", "wrapped", data_selector="payload.records"),
            resource("rooted", "wrapped", data_selector="$.payload.records"),
            resource("starred", "wrapped", data_selector="payload.records[*]"),
            resource("quoted", "wrapped", data_selector="'many-results'"),
            resource("wildcard", "wrapped", data_selector="nested.*.post"),
            resource("whole_list", "posts_header_link", data_selector="$", paginator="header_link"),
            # 120 flat rows in one page: restsync's Arrow path against dlt's row path
            resource("arrow_sized_page", "measurements", paginator="single_page"),
        ),
    ),
    # source-level config: the client's paginator, and resource_defaults merged as dlt merges
    # them (endpoint keys, params one level deep, columns column by column, the rest)
    ParityCase(
        "source_level_config",
        source(
            "posts",
            {
                "name": "events",
                "endpoint": {"params": {"per_page": 5}},
                "columns": {"updated_at": {"data_type": "text"}},
            },
            {
                "name": "comments",
                "endpoint": {
                    "path": "posts/{resources.posts.id}/comments",
                    "params": {"per_page": 1},
                    "paginator": PAGE_NUMBER,
                },
                "write_disposition": "append",
            },
            resource("users", "users", data_selector="$.users", paginator="single_page"),
            client={"paginator": NEXT_PAGE},
            resource_defaults={
                "primary_key": "id",
                "write_disposition": "merge",
                "columns": {"id": {"data_type": "text"}},
                "endpoint": {
                    "path": "not_a_route",  # dlt ignores a default path: a resource's path is its own
                    "data_selector": "data",
                    "params": {"per_page": 4},
                },
            },
        ),
    ),
]
