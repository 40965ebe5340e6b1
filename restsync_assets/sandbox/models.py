"""Small value types shared by the sandbox modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    """A JSON response: ``body`` is serialised with ``json.dumps``."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True)
class RequestRecord:
    """Entry of :attr:`Sandbox.requests`: one request the sandbox answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    spec: str | None
    resource: str | None = None


class ApiError(Exception):
    """Raised by route handlers to answer with a JSON error."""

    def __init__(self, status: int, error: str, description: str = "", headers=None):
        super().__init__(f"{status} {error}: {description}")
        self.response = Response(
            status,
            {"error": error, "error_description": description} if description else {"error": error},
            dict(headers or {}),
        )
