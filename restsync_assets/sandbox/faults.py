"""Fault-injection extension point.

:class:`Sandbox` calls ``sandbox.faults.intercept(request)`` for every request,
after the spec and route were resolved (``request.spec`` / ``request.resource``
are set when they matched) and before authentication and normal handling. A
non-``None`` :class:`~restsync_assets.sandbox.models.Response` is sent instead
of the normal answer (and logged in ``Sandbox.requests`` like any other).

The default plan injects nothing. Subclass :class:`FaultPlan` (or assign any
object with an ``intercept`` method to ``sandbox.faults``) to add faults.
"""

from __future__ import annotations

from .models import IncomingRequest, Response


class FaultPlan:
    """No-op fault plan: every request is served normally."""

    def intercept(self, request: IncomingRequest) -> Response | None:
        """Return an override response for ``request``, or ``None`` to serve it normally."""
        return None
