"""Deterministic local sandbox serving the seed APIs (`SEEDS`: five with OAuth2 and the
`reports` vendor's async report jobs, :mod:`restsync_assets.sandbox.reports`) and vendors with
static credentials (bearer token, API key in a header or the query, HTTP basic; see
:mod:`restsync_assets.sandbox.vendors`).

Example::

    from restsync_assets.sandbox import Sandbox

    with Sandbox() as sb:              # port 0 -> a free port
        sb.base_url("ledger")          # http://127.0.0.1:<port>/ledger
        sb.token_url("ledger")         # .../ledger/oauth2/v1/tokens/bearer
        sb.credentials("ledger")       # client_id, client_secret, refresh_token
        sb.rows("ledger", "resource_name")  # ground truth the API serves

``serve(port)`` runs it in the foreground (``restsync sandbox --port P``).
Set ``RESTSYNC_SANDBOX_LOG=1`` to log each request to stderr.
"""

from .auth import GRANT_TYPES, TOKEN_PATHS, credentials_for
from .data import RESOURCES, SANDBOX_SPECS, build_dataset
from .faults import Fault, FaultPlan, demo_plan
from .models import IncomingRequest, RequestRecord, Response
from .server import SEEDS, Sandbox, serve, serve_forever
from .vendors import VENDORS

__all__ = [
    "GRANT_TYPES",
    "RESOURCES",
    "SANDBOX_SPECS",
    "SEEDS",
    "TOKEN_PATHS",
    "VENDORS",
    "Fault",
    "FaultPlan",
    "IncomingRequest",
    "RequestRecord",
    "Response",
    "Sandbox",
    "build_dataset",
    "credentials_for",
    "demo_plan",
    "serve",
    "serve_forever",
]
