"""Small specs against the sandbox's APIs, as data (the way dlt's `source_configs.py` feeds
several test files): the fault, recovery and security tests build their specs from these.

A spec names a sandbox API (`ledger`, `marketing_api`, ...); its base and token URLs and its
credentials come from the env vars `sandbox_env` sets, so the YAML holds placeholders only.
"""

from __future__ import annotations

from typing import Any

#: Every spec's retries: short waits the fault tests assert exactly (through a `FakeClock`).
ERROR_HANDLER = {"max_retries": 3, "backoff_factor": 0.5, "max_retry_delay": 30, "timeout": 5}


def sandbox_spec(
    name: str, resources: list[dict], error_handler: dict | None = None, **client: Any
) -> dict:
    """A spec for sandbox API `name` with `resources` (URLs and credentials from env vars)."""
    return {
        "name": name,
        "client": {
            "base_url": "https://api.example.com",
            "auth": {"type": "oauth2", "token_url": "https://auth.example.com/token"},
            "error_handler": {**ERROR_HANDLER, **(error_handler or {})},
            **client,
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": resources,
    }


def offset(path: str, name: str, limit: int, **paginator: Any) -> dict:
    """A resource paged by `offset`/`limit` with its rows under `data`."""
    return {
        "name": name,
        "endpoint": {
            "path": path,
            "data_selector": "data",
            "paginator": {"type": "offset", "limit": limit, **paginator},
        },
    }


#: ledger: 23 rows in pages of 5.
LEDGER = offset("/v1/resource", "resource_name", 5)
#: ad_analytics: 233 accounts in pages of 100.
AD_ACCOUNTS = offset("/v1/accounts", "accounts", 100)
#: marketing_api: organizations wrapped in envelopes, paged by a `next_link` cursor.
MARKETING_ORGS = {
    "name": "organizations",
    "endpoint": {
        "path": "/v1/me/organizations",
        "data_selector": "organizations.*.organization",
        "paginator": {
            "type": "cursor",
            "cursor_value": "{{ response.get('paging', {}).get('next_link', {}) }}",
            "stop_condition": "{{ not response.get('paging', {}).get('next_link', {}) }}",
        },
    },
}
#: native_ads: the accounts, in one page; parents of `native_child` resources.
NATIVE_ACCOUNTS = {
    "name": "accounts",
    "endpoint": {
        "path": "/v1/users/current/allowed-accounts",
        "data_selector": "results",
        "paginator": "single_page",
    },
}
#: native_ads: an account's campaigns (a child of `NATIVE_ACCOUNTS`).
NATIVE_CAMPAIGNS = "/v1/{account_id}/campaigns/"


def native_child(name: str, path: str, response_actions: list | None = None) -> dict:
    """A native_ads child resource of one page under `results`."""
    endpoint: dict[str, Any] = {
        "path": path,
        "data_selector": "results",
        "paginator": "single_page",
    }
    if response_actions is not None:
        endpoint["response_actions"] = response_actions
    return {"name": name, "endpoint": endpoint}
