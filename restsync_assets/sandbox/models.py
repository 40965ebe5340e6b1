"""Small value types shared by the sandbox modules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    """A response: ``body`` is serialised with ``json.dumps`` unless ``raw`` bytes are given.

    Transport faults: ``delay`` seconds are waited before anything is sent; with
    ``reset_after`` the status line, headers (with the full ``Content-Length``) and only that
    many bytes of the body are sent before the connection is reset (TCP RST).
    A 204 is sent without a body.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    hold: Any = None
    """A ``threading.Event``: with ``delay``, the answer is sent as soon as it is set."""
    reset_after: int | None = None

    def payload(self) -> bytes:
        """The body as sent on the wire."""
        if self.status == 204:
            return b""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body).encode()


@dataclass
class IncomingRequest:
    """One HTTP request as seen by the sandbox application.

    ``headers`` has lower-cased names. ``spec`` is ``None`` when the first path
    segment is not a sandbox spec; ``resource`` is filled in once a data route
    matched (``"oauth"`` for token endpoints).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    spec: str | None = None
    resource: str | None = None
    faults: list[str] = field(default_factory=list)
    """Kinds of the faults injected into this request (see ``sandbox.faults``)."""
    rotate_refresh_token: bool = False
    """Set by a fault: a refresh-token grant answers with a new refresh token, the old dies."""


@dataclass(frozen=True)
class RequestRecord:
    """Entry of :attr:`Sandbox.requests`: one request the sandbox answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    spec: str | None
    resource: str | None = None
    faults: tuple[str, ...] = ()
    #: when the request arrived (epoch seconds, `time.time()`, taken once its headers were read)
    at: float = 0.0


class ApiError(Exception):
    """Raised by route handlers to answer with a JSON error."""

    def __init__(self, status: int, error: str, description: str = "", headers=None):
        super().__init__(f"{status} {error}: {description}")
        self.response = Response(
            status,
            {"error": error, "error_description": description} if description else {"error": error},
            dict(headers or {}),
        )
