"""The sandbox's GraphQL API: vendor ``codehost`` (bearer token), ``POST /codehost/graphql``.

One query shape, as a code host's search is paged (no GraphQL library: the body is read as
JSON, the variables drive the page)::

    query($first: Int!, $after: String) {
      search(first: $first, after: $after) {
        nodes { id name owner stars language archived updated_at }
        pageInfo { endCursor hasNextPage }
      }
    }

``variables.first`` (1..100, default 10) rows after the opaque cursor ``variables.after``
(null: from the start). As in GraphQL, ``endCursor`` is the cursor of the page's last node
(also on the last page, where ``hasNextPage`` is false) and null on an empty page. A body
without a ``query`` string, with ``variables`` that are not a mapping, a bad ``first`` or an
unknown cursor is answered 400 with ``{"errors": [{"message": ...}]}``.

The repositories are not part of the five seed APIs' data.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .models import ApiError, IncomingRequest, Response

VENDOR = "codehost"
RESOURCE = "repositories"
PATH = "/graphql"
DEFAULT_FIRST, MAX_FIRST = 10, 100
_LANGUAGES = ("Python", "Go", "Rust", None, "TypeScript", "Java")


def build_rows() -> list[dict]:
    """The repositories the search returns, in its order (deterministic)."""
    from .data import _rng, _stamp

    rng = _rng(VENDOR, RESOURCE)
    return [
        {
            "id": f"R_{i + 1:05d}",
            "name": f"project-{i + 1}",
            "owner": f"org-{i % 7 + 1}",
            "stars": rng.randint(0, 50_000),
            "language": _LANGUAGES[i % len(_LANGUAGES)],
            "archived": i % 8 == 5,
            "updated_at": _stamp(i, 13),
        }
        for i in range(37)
    ]


def _error(message: str) -> ApiError:
    error = ApiError(400, "bad_request")
    error.response = Response(400, {"errors": [{"message": message}]})
    return error


def encode_cursor(position: int) -> str:
    """The opaque cursor of the row at `position` (0-based)."""
    return base64.b64encode(f"cursor:{position}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        prefix, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
        if prefix != "cursor" or not value.isdigit():
            raise ValueError
        return int(value)
    except ValueError:
        raise _error(f"after: {cursor!r} is not a cursor this API gave") from None


def variables(request: IncomingRequest) -> dict[str, Any]:
    """The request's `variables`, once the body is a GraphQL request with a query."""
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        raise _error("the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise _error("the body must be a JSON object with a `query` string")
    if "{{" in body["query"] or "}}" in body["query"]:
        raise _error("syntax error: unexpected `{{` or `}}` in the query")
    if "search" not in body["query"]:
        raise _error("unsupported query: this API answers `search(first:, after:)` only")
    found = body.get("variables") or {}
    if not isinstance(found, dict):
        raise _error("`variables` must be a JSON object")
    return found


def answer(request: IncomingRequest, rows: list[dict]) -> Response:
    """One page of `rows` for the search in `request`'s body."""
    given = variables(request)
    first = given.get("first", DEFAULT_FIRST)
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= MAX_FIRST:
        raise _error(f"first: must be a whole number from 1 to {MAX_FIRST}, got {first!r}")
    after = given.get("after")
    start = 0 if after is None else decode_cursor(str(after)) + 1
    page = rows[start : start + first]
    end = encode_cursor(start + len(page) - 1) if page else None
    info = {"endCursor": end, "hasNextPage": start + len(page) < len(rows)}
    return Response(200, {"data": {"search": {"nodes": page, "pageInfo": info}}})


def repeat_cursor(body: dict, request: IncomingRequest) -> bool:
    """The `repeat_cursor` fault on a search page: `endCursor` is the cursor the request sent
    (so the next page asked for is this one again); on the first page (no cursor sent) it
    changes nothing. False when `body` is not a search page."""
    search = (body.get("data") or {}).get("search") if isinstance(body.get("data"), dict) else None
    if not isinstance(search, dict) or not isinstance(search.get("pageInfo"), dict):
        return False
    try:
        after = (json.loads(request.body or b"{}").get("variables") or {}).get("after")
    except (ValueError, AttributeError):
        after = None
    if after is not None:
        search["pageInfo"] = {"endCursor": after, "hasNextPage": True}
    return True
