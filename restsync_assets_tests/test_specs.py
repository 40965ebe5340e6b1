"""Table-driven spec validation: valid specs load, invalid ones fail with one exact line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from restsync_assets.specs import load_spec_file, load_specs
from restsync_assets.specs.errors import SpecError, SpecValidationError
from restsync_assets.specs.model import OffsetPaginatorSpec, TemplatedCursorPaginatorSpec
from restsync_assets.specs.selectors import normalize_selector

from .support import DELETE, SEED_SPECS, edited, write_spec

BASE = {
    "name": "shop",
    "client": {
        "base_url": "https://api.example.com",
        "auth": {"type": "oauth2", "token_url": "https://api.example.com/oauth/token"},
    },
    "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
    "resources": [
        {"name": "organizations", "endpoint": {"path": "/v1/orgs", "data_selector": "data"}},
        {
            "name": "adaccounts",
            "endpoint": {"path": "/v1/organizations/{organization_id}/adaccounts"},
        },
    ],
}


def spec_with(**changes):
    """BASE with changes at `__`-separated paths, e.g. {"resources__0__endpoint__path": "/x"}."""
    return edited(BASE, **changes)


def write(tmp_path: Path, spec, name: str = "shop.yaml") -> Path:
    """`spec` (a dict or YAML text) as `tmp_path/name`."""
    return write_spec(tmp_path, spec, name)


TOKEN_URL_RULE = (
    "must be an https:// URL (plain http only on a loopback host: 127.0.0.1, ::1, localhost)"
)
OAUTH2 = ("oauth2", "token_url")
DLT_CLIENT_CREDENTIALS = ("oauth2_client_credentials", "access_token_url")
#: where an auth lives: (spec_with path, how the error line names it)
AUTH_AT = {
    "client": ("client", "client.auth"),
    "endpoint": ("resources__0__endpoint", "resource 'organizations': endpoint.auth"),
}
#: (case, where the auth is, (auth type, token URL key), URL): each is refused
INSECURE_TOKEN_URLS = [
    ("oauth2 http", "client", OAUTH2, "http://auth.example.com/token"),
    ("oauth2 http to a private ip", "client", OAUTH2, "http://10.0.0.5/token"),
    ("oauth2 http to a localhost lookalike", "client", OAUTH2, "http://localhost.example.com/t"),
    ("oauth2 ftp", "client", OAUTH2, "ftp://auth.example.com/token"),
    ("oauth2 https without a host", "client", OAUTH2, "https:///token"),
    ("oauth2 relative", "client", OAUTH2, "/oauth/token"),
    ("dlt client credentials http", "client", DLT_CLIENT_CREDENTIALS, "http://a.example.com/t"),
    ("endpoint dlt client credentials http", "endpoint", DLT_CLIENT_CREDENTIALS, "http://a.b/t"),
]
#: (case, (auth type, token URL key), URL): each is accepted
SECURE_TOKEN_URLS = [
    ("oauth2 http to 127.0.0.1", OAUTH2, "http://127.0.0.1:8080/token"),
    ("oauth2 http to localhost", OAUTH2, "http://localhost/token"),
    ("oauth2 http to ::1", OAUTH2, "http://[::1]:9000/token"),
    ("oauth2 https", OAUTH2, "https://auth.example.com/token"),
    ("dlt client credentials https", DLT_CLIENT_CREDENTIALS, "https://auth.example.com/token"),
]

INVALID = [
    (
        "unknown paginator type",
        spec_with(resources__0__endpoint__paginator={"type": "cursr"}),
        "resource 'organizations': endpoint.paginator.type: unknown paginator type 'cursr'; allowed: auto, cursor, header_cursor, header_link, json_link, json_response, offset, page_number, single_page",
    ),
    (
        "unknown auth type",
        spec_with(client__auth={"type": "oauth3", "token_url": "https://x/t"}),
        "client.auth.type: unknown auth type 'oauth3'; allowed: api_key, bearer, http_basic, oauth2, oauth2_client_credentials, session",
    ),
    (
        "missing token_url",
        spec_with(client__auth={"type": "oauth2"}),
        "client.auth.token_url: is required",
    ),
    (
        "secret in yaml",
        spec_with(
            client__auth={"type": "oauth2", "token_url": "https://x/t", "client_secret": "s3cr3t"}
        ),
        "client.auth.client_secret: secrets never live in YAML: write {secret: client_secret} and set SHOP_CLIENT_SECRET (or sources.shop.client_secret in .dlt/secrets.toml)",
    ),
    (
        "missing name",
        spec_with(name=DELETE),
        "name: must be snake_case (lowercase letters, digits, _), got None",
    ),
    (
        "name not snake_case",
        spec_with(name="My-Shop"),
        "name: must be snake_case (lowercase letters, digits, _), got 'My-Shop'",
    ),
    (
        "missing base_url",
        spec_with(client__base_url=DELETE),
        "client.base_url: must be an http(s) URL, got None",
    ),
    (
        "unknown top-level key",
        spec_with(resourcez=[]),
        "resourcez: unknown key; allowed: client, description, name, owners, resource_defaults, resources, schedule, tags",
    ),
    (
        "no resources",
        spec_with(resources=[]),
        "resources: must be a non-empty list of resources",
    ),
    (
        "duplicate resource",
        spec_with(resources__1={"name": "organizations", "endpoint": "/v2/orgs"}),
        "resource 'organizations': name: duplicate resource name",
    ),
    (
        "unbound placeholder",
        spec_with(resources__1__endpoint__path="/v1/campaigns/{parent_id}/items"),
        "resource 'adaccounts': endpoint.path: placeholder {parent_id} is not bound: give it a value with params.parent_id: <value>, or bind it to a parent's field with {resources.<parent>.<field>} in the path or params.parent_id: {type: resolve, resource: <parent>, field: <field>}; possible parents: organizations",
    ),
    (
        "resolve param missing from the path",
        spec_with(
            resources__1__endpoint={
                "path": "/v1/adaccounts",
                "params": {"org": {"type": "resolve", "resource": "organizations", "field": "id"}},
            }
        ),
        "resource 'adaccounts': endpoint.params.org: resolve param org is not in the path (dlt binds resolve params in the path only); for a query param use org: \"{resources.organizations.id}\"",
    ),
    (
        "path placeholder bound to an incremental param",
        spec_with(
            resources__0__endpoint__path="/v1/orgs/{since}",
            resources__0__endpoint__params={"since": {"type": "incremental", "cursor_path": "u"}},
        ),
        "resource 'organizations': endpoint.params.since: {since} in the path takes a plain value or a resolve param, not {'type': 'incremental', 'cursor_path': 'u'}",
    ),
    (
        "unbalanced brace in the path",
        spec_with(resources__0__endpoint__path="/v1/orgs/{id"),
        "resource 'organizations': endpoint.path: '/v1/orgs/{id': expected '}' before end of string; write a literal { or } as {{ or }}",
    ),
    (
        "placeholder dlt does not fill in params",
        spec_with(resources__0__endpoint__params={"q": "name:{name}"}),
        "resource 'organizations': endpoint.params: {name} is not a placeholder dlt fills here: use {resources.<parent>.<field>} or {incremental.start_value} (with an incremental); write a literal { or } as {{ or }}",
    ),
    (
        "resource_defaults endpoint not a mapping",
        spec_with(resource_defaults__endpoint="/v1/x"),
        "resource_defaults.endpoint: must be a mapping",
    ),
    (
        "resolve to unknown resource",
        spec_with(
            resources__1__endpoint={
                "path": "/v1/x/{parent_id}",
                "params": {"parent_id": {"type": "resolve", "resource": "orgs", "field": "id"}},
            }
        ),
        "resource 'adaccounts': endpoint.params.parent_id.resource: unknown resource 'orgs'; allowed: organizations",
    ),
    (
        "invalid JSONPath selector",
        spec_with(resources__0__endpoint__data_selector="data[?("),
        "resource 'organizations': endpoint.data_selector: 'data[?(' is not valid JSONPath (Parse error near the end of string!); e.g. data, results[*], organizations.*.organization",
    ),
    (
        "unknown endpoint key",
        spec_with(resources__0__endpoint__paginatr={"type": "offset", "limit": 5}),
        "resource 'organizations': endpoint.paginatr: unknown endpoint key; allowed: async_job, auth, data, data_selector, headers, incremental, json, method, paginator, params, path, response_actions, response_format",
    ),
    (
        "offset without limit",
        spec_with(resources__0__endpoint__paginator={"type": "offset"}),
        "resource 'organizations': endpoint.paginator.limit: is required",
    ),
    (
        "unknown offset key",
        spec_with(resources__0__endpoint__paginator={"type": "offset", "limit": 5, "size": 3}),
        "resource 'organizations': endpoint.paginator.size: unknown key; allowed: has_more_path, limit, limit_param, maximum_offset, offset, offset_param, stop_after_empty_page, total_path, type",
    ),
    (
        "template syntax error",
        spec_with(
            resources__0__endpoint__paginator={
                "type": "cursor",
                "cursor_value": "{{ response.get( }}",
            }
        ),
        "resource 'organizations': endpoint.paginator.cursor_value: template '{{ response.get( }}': syntax error: TemplateSyntaxError: unexpected '}', expected ')'",
    ),
    (
        "bad write disposition",
        spec_with(resources__0__write_disposition="upsertt"),
        "resource 'organizations': write_disposition: unknown write disposition 'upsertt'; allowed: append, merge, replace, skip",
    ),
    (
        "bad error handler key",
        spec_with(client__error_handler={"retries": 3}),
        "client.error_handler.retries: unknown key; allowed: backoff_factor, max_retries, max_retry_delay, response_rules, retry_on_status_codes, timeout",
    ),
    (
        "bad status code",
        spec_with(resources__0__error_handler={"retry_on_status_codes": [42]}),
        "resource 'organizations': error_handler.retry_on_status_codes: [42] are not HTTP status codes (100-599)",
    ),
    (
        "malformed secret value",
        spec_with(resources__0__endpoint__params={"api_key": {"secret": "Api-Key"}}),
        "resource 'organizations': endpoint.params.api_key: a secret value is {secret: <snake_case name>}, read from the env var <SPEC NAME>_<NAME> or .dlt/secrets.toml",
    ),
    (
        "concurrency out of range",
        spec_with(client__concurrency=0),
        "client.concurrency: must be a whole number of parallel requests from 1 to 64 or auto, got 0",
    ),
    (
        "bad partitions type",
        spec_with(resources__0__partitions={"type": "daily-ish", "start": "2026-01-01"}),
        "resource 'organizations': partitions.type: Input should be 'hourly', 'daily', 'weekly' or 'monthly'",
    ),
    (
        "bad partitions start",
        spec_with(resources__0__partitions={"type": "daily", "start": "yesterday"}),
        "resource 'organizations': partitions.start: 'yesterday' is not an ISO date such as 2026-01-01",
    ),
    (
        "child with other partitions",
        spec_with(
            resources__0__partitions={"type": "daily", "start": "2026-01-01"},
            resources__1__partitions={"type": "hourly", "start": "2026-01-01"},
        ),
        "resource 'adaccounts': partitions: a child shares its parent's partitions; remove it or partition 'organizations' the same way",
    ),
    (
        "bad freshness",
        spec_with(resources__0__freshness={"max_lag": "soon"}),
        "resource 'organizations': freshness.max_lag: 'soon' is not a duration such as 90s, 30m, 6h, 2d, 1w (a bare number means minutes)",
    ),
    (
        "bad schedule cron",
        spec_with(schedule="every day"),
        "schedule.cron: 'every day' is not a cron expression such as '0 6 * * *'",
    ),
    (
        "bad automation condition",
        spec_with(resources__0__automation_condition="sometimes"),
        "resource 'organizations': automation_condition: unknown automation condition 'sometimes'; allowed: eager, on_missing, {on_cron: <cron>}",
    ),
    (
        "negative min_rows",
        spec_with(resources__0__checks={"min_rows": -1}),
        "resource 'organizations': checks.min_rows: Input should be greater than or equal to 0",
    ),
    (
        "unknown on_invalid",
        spec_with(resources__0__on_invalid="skip"),
        "resource 'organizations': on_invalid: unknown value 'skip'; allowed: fail, quarantine",
    ),
    (
        "on_invalid not a string",
        spec_with(resources__0__on_invalid=True),
        "resource 'organizations': on_invalid: unknown value True; allowed: fail, quarantine",
    ),
    (
        "quarantine with nothing to break",
        spec_with(resource_defaults__primary_key=DELETE, resources__0__on_invalid="quarantine"),
        "resource 'organizations': on_invalid: quarantine needs a declared schema or a primary_key (without either no row can be invalid)",
    ),
    (
        "unknown schema type",
        spec_with(resources__0__schema={"id": {"type": "uuid"}}),
        "resource 'organizations': schema.id.type: unknown type 'uuid'; allowed: array, bigint, binary, bool, boolean, date, date-time, datetime, decimal, double, float, int, integer, json, number, object, string, text, time, timestamp",
    ),
    (
        "cycle",
        spec_with(
            resources__0__endpoint={"path": "/v1/a/{adaccount_id}"},
        ),
        "resource 'organizations': endpoint: resources depend on each other in a cycle: organizations -> adaccounts -> organizations",
    ),
    (
        "unknown dlt resource hint",
        spec_with(resources__0__primary_keys="id"),
        "resource 'organizations': primary_keys: unknown key; allowed: add_fields, automation_condition, checks, columns, deletes, endpoint, error_handler, file_format, for_each, freshness, include_from_parent, max_table_nesting, merge_key, name, nested_hints, normalize_keys, on_invalid, owners, parallelized, parent_table_name, parents, partitions, primary_key, processing_steps, record_filter, references, remove_fields, remove_values_when, rename_fields, schema, schema_contract, selected, table_format, table_name, tags, write_disposition (dlt rest_api)",
    ),
    (
        "invalid yaml",
        "name: shop\nclient: [unclosed\n",
        "invalid YAML at line 3, column 1: did not find expected ',' or ']'",
    ),
    *(
        (
            f"insecure token url: {case}",
            spec_with(**{f"{AUTH_AT[at][0]}__auth": {"type": kind, key: url}}),
            f"{AUTH_AT[at][1]}.{key}: {url!r} {TOKEN_URL_RULE}",
        )
        for case, at, (kind, key), url in INSECURE_TOKEN_URLS
    ),
    (
        "owner that is neither an email nor a team",
        spec_with(owners=["jane@example.com", "data-eng"]),
        "owners[1]: 'data-eng' is not an owner; allowed: an email address (jane@example.com) or a team name prefixed with team: (team:data-eng)",
    ),
    (
        "empty team owner on a resource",
        spec_with(resources__0__owners=["team:"]),
        "resource 'organizations': owners[0]: 'team:' is not an owner; allowed: an email address (jane@example.com) or a team name prefixed with team: (team:data-eng)",
    ),
    (
        "owners not a list",
        spec_with(owners="team:data-eng"),
        "owners: must be a list of owners (emails or team:<name>)",
    ),
    (
        "tag value that is a number",
        spec_with(tags={"tier": 1}),
        "tags.tier: 1 is not a tag value; allowed: a string of up to 63 letters, digits, _ - . (quote numbers and booleans)",
    ),
    (
        "tag value with a space",
        spec_with(resources__1__tags={"domain": "ad spend"}),
        "resource 'adaccounts': tags.domain: 'ad spend' is not a tag value; allowed: a string of up to 63 letters, digits, _ - . (quote numbers and booleans)",
    ),
    (
        "tag name with a space",
        spec_with(tags={"cost center": "x"}),
        "tags: 'cost center' is not a tag name; allowed: 1-63 letters, digits, _ - . with an optional prefix/ of the same (not dagster/)",
    ),
    (
        "tag in dagster's namespace",
        spec_with(tags={"dagster/kind/api": ""}),
        "tags: 'dagster/kind/api' is not a tag name; allowed: 1-63 letters, digits, _ - . with an optional prefix/ of the same (not dagster/)",
    ),
    (
        "tags not a mapping",
        spec_with(resources__0__tags=["pii"]),
        "resource 'organizations': tags: must map tag names to string values",
    ),
]


def _literal(key: str, secret: str) -> str:
    return (
        f"{key}: secrets never live in YAML: write {{secret: {secret}}} and set "
        f"SHOP_{secret.upper()} (or sources.shop.{secret} in .dlt/secrets.toml)"
    )


OAUTH_URL = "https://api.example.com/oauth/token"
#: a secret written in the YAML, in an auth field or a header that carries credentials
LITERAL_SECRETS = [
    (
        "bearer token",
        spec_with(client__auth={"type": "bearer", "token": "ghp_x"}),
        _literal("client.auth.token", "token"),
    ),
    (
        "bearer shorthand token",
        spec_with(client__auth={"token": "ghp_x"}),
        _literal("client.auth.token", "token"),
    ),
    (
        "api_key",
        spec_with(client__auth={"type": "api_key", "api_key": "k"}),
        _literal("client.auth.api_key", "api_key"),
    ),
    (
        "basic password",
        spec_with(client__auth={"type": "http_basic", "username": "u", "password": "p"}),
        _literal("client.auth.password", "password"),
    ),
    (
        "client credentials secret",
        spec_with(
            client__auth={
                "type": "oauth2_client_credentials",
                "access_token_url": OAUTH_URL,
                "client_secret": "s",
            }
        ),
        _literal("client.auth.client_secret", "client_secret"),
    ),
    (
        "client credentials id",
        spec_with(
            client__auth={
                "type": "oauth2_client_credentials",
                "access_token_url": OAUTH_URL,
                "client_id": "i",
            }
        ),
        _literal("client.auth.client_id", "client_id"),
    ),
    (
        "client credentials access token",
        spec_with(
            client__auth={
                "type": "oauth2_client_credentials",
                "access_token_url": OAUTH_URL,
                "access_token": "t",
            }
        ),
        _literal("client.auth.access_token", "access_token"),
    ),
    (
        "oauth2 refresh token",
        spec_with(client__auth={"type": "oauth2", "token_url": OAUTH_URL, "refresh_token": "r"}),
        _literal("client.auth.refresh_token", "refresh_token"),
    ),
    (
        "empty token",
        spec_with(client__auth={"type": "bearer", "token": None}),
        _literal("client.auth.token", "token"),
    ),
    (
        "endpoint auth token",
        spec_with(resources__0__endpoint__auth={"type": "bearer", "token": "t"}),
        "resource 'organizations': " + _literal("endpoint.auth.token", "token"),
    ),
    (
        "Authorization header",
        spec_with(client__headers={"Authorization": "Bearer ghp_x"}),
        _literal("client.headers.Authorization", "authorization"),
    ),
    (
        "Proxy-Authorization header",
        spec_with(client__headers={"Proxy-Authorization": "Basic dTpw"}),
        _literal("client.headers.Proxy-Authorization", "proxy_authorization"),
    ),
    (
        "Cookie header",
        spec_with(client__headers={"Cookie": "sid=abc"}),
        _literal("client.headers.Cookie", "cookie"),
    ),
    (
        "key in header name",
        spec_with(client__headers={"X-Api-Key": "k"}),
        _literal("client.headers.X-Api-Key", "x_api_key"),
    ),
    (
        "token in header name",
        spec_with(client__headers={"x-auth-TOKEN": "t"}),
        _literal("client.headers.x-auth-TOKEN", "x_auth_token"),
    ),
    (
        "secret in header name",
        spec_with(client__headers={"Client-Secret": "s"}),
        _literal("client.headers.Client-Secret", "client_secret"),
    ),
    (
        "resource_defaults header",
        spec_with(resource_defaults__endpoint={"headers": {"Authorization": "Bearer x"}}),
        _literal("resource_defaults.endpoint.headers.Authorization", "authorization"),
    ),
    (
        "endpoint header",
        spec_with(resources__1__endpoint__headers={"X-Shop-Key": "k"}),
        "resource 'adaccounts': " + _literal("endpoint.headers.X-Shop-Key", "x_shop_key"),
    ),
]
#: auth configs that are wrong for another reason than a literal secret
BAD_AUTH = [
    (
        "malformed auth secret",
        spec_with(client__auth={"type": "bearer", "token": {"secret": "Bad-Name"}}),
        "client.auth.token: a secret value is {secret: <snake_case name>}, read from the env var <SPEC NAME>_<NAME> or .dlt/secrets.toml",
    ),
    (
        "secret with extra keys",
        spec_with(client__headers={"Authorization": {"secret": "a", "prefix": "Bearer"}}),
        "client.headers.Authorization: a secret value is {secret: <snake_case name>}, read from the env var <SPEC NAME>_<NAME> or .dlt/secrets.toml",
    ),
    (
        "unknown bearer key",
        spec_with(client__auth={"type": "bearer", "name": "X-Token"}),
        "client.auth.name: unknown key; allowed: token, type",
    ),
    (
        "unknown api_key location",
        spec_with(client__auth={"type": "api_key", "location": "body"}),
        "client.auth.location: Input should be 'header', 'query', 'param' or 'cookie'",
    ),
    (
        "client credentials without url",
        spec_with(client__auth={"type": "oauth2_client_credentials"}),
        "client.auth.access_token_url: is required",
    ),
    (
        "oauth2 on an endpoint",
        spec_with(resources__0__endpoint__auth={"type": "oauth2", "token_url": OAUTH_URL}),
        "resource 'organizations': endpoint.auth.type: restsync's oauth2 token is shared by every resource of the source: set it on client.auth",
    ),
]
INVALID += LITERAL_SECRETS + BAD_AUTH


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_gives_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, case, spec, expected
):
    """The error is exactly one line: the file (relative to the working folder), then the
    resource and key where there is one, then the problem with the allowed values."""
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert str(caught.value) == f"shop.yaml: {expected}"


def test_unbound_placeholder_never_suggests_the_resources_own_descendants(tmp_path):
    """The issue-8 config without its param: the hint lists other resources, not children."""
    spec = spec_with(resources__0__endpoint__path="/v1/orgs/{org}")
    spec["resources"] += [
        {"name": "creatives", "endpoint": "/v1/adaccounts/{adaccount_id}/creatives"},
        {"name": "users", "endpoint": "/v1/users"},
    ]
    with pytest.raises(SpecError) as caught:
        load_spec_file(write(tmp_path, spec))
    assert str(caught.value).endswith(
        "resource 'organizations': endpoint.path: placeholder {org} is not bound: give it a "
        "value with params.org: <value>, or bind it to a parent's field with "
        "{resources.<parent>.<field>} in the path or params.org: {type: resolve, resource: "
        "<parent>, field: <field>}; possible parents: users"
    )


def test_error_lines_name_the_file_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, spec_with(client__auth={"type": "nope"}))
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert str(caught.value).startswith("shop.yaml: client.auth.type: ")


VALID = [
    (
        "owners and tags on the spec, the defaults and a resource",
        spec_with(
            owners=["jane@example.com", "team:data-eng"],
            tags={"domain": "sales", "team/tier": "gold"},
            resource_defaults__owners=["team:ads"],
            resources__1__tags={"pii": ""},
        ),
    ),
    ("base", BASE),
    ("string resource shorthand", spec_with(resources__1="users")),
    ("string endpoint shorthand", spec_with(resources__0__endpoint="/v1/orgs")),
    (
        "dlt json_link paginator",
        spec_with(resources__0__endpoint__paginator={"type": "json_link", "next_url_path": "next"}),
    ),
    (
        "dlt cursor paginator",
        spec_with(
            resources__0__endpoint__paginator={
                "type": "cursor",
                "cursor_path": "next",
                "cursor_param": "c",
            }
        ),
    ),
    ("dlt paginator shorthand", spec_with(resources__0__endpoint__paginator="single_page")),
    ("dlt bearer auth without token", spec_with(client__auth={"type": "bearer"})),
    (
        "explicit dlt path binding",
        spec_with(resources__1__endpoint__path="/v1/o/{resources.organizations.id}/a"),
    ),
    (
        "dlt incremental",
        spec_with(
            resources__0__endpoint__params={"since": "{incremental.start_value}"},
            resources__0__endpoint__incremental={
                "cursor_path": "updated_at",
                "initial_value": "2024-01-01",
            },
        ),
    ),
    (
        "dlt response actions",
        spec_with(
            resources__1__endpoint__response_actions=[{"status_code": 404, "action": "ignore"}]
        ),
    ),
    (
        "dlt table hints",
        spec_with(resources__0__max_table_nesting=0, resources__0__table_name="orgs"),
    ),
    (
        "dict write disposition",
        spec_with(resources__0__write_disposition={"disposition": "merge", "strategy": "upsert"}),
    ),
    ("no auth", spec_with(client__auth=DELETE)),
    ("concurrency", spec_with(client__concurrency=8)),
    ("secret header", spec_with(client__headers={"X-Api-Key": {"secret": "api_key"}})),
    (
        "headers without credentials",
        spec_with(
            client__headers={
                "Accept": "application/json",
                "User-Agent": "restsync",
                "X-Empty-Token": "",
            },
            resources__0__endpoint__headers={"X-Request-Source": "restsync"},
        ),
    ),
    ("bearer shorthand", spec_with(client__auth="bearer")),
    (
        "api_key in the query",
        spec_with(client__auth={"type": "api_key", "name": "appid", "location": "query"}),
    ),
    (
        "api_key in a cookie",
        spec_with(client__auth={"type": "api_key", "name": "sid", "location": "cookie"}),
    ),
    ("basic with a user name", spec_with(client__auth={"type": "http_basic", "username": "bob"})),
    (
        "client credentials",
        spec_with(
            client__auth={"type": "oauth2_client_credentials", "access_token_url": OAUTH_URL}
        ),
    ),
    (
        "endpoint bearer auth",
        spec_with(
            resources__0__endpoint__auth={"type": "bearer", "token": {"secret": "org_token"}}
        ),
    ),
    ("freshness shorthand", spec_with(resource_defaults__freshness="6h")),
    ("quarantine with a primary key", spec_with(resources__0__on_invalid="quarantine")),
    (
        "quarantine with a schema only",
        spec_with(
            resource_defaults__primary_key=DELETE,
            resources__0__on_invalid="quarantine",
            resources__0__schema={"id": {"type": "integer", "nullable": False}},
        ),
    ),
    ("on_invalid fail", spec_with(resources__0__on_invalid="fail")),
    ("on_invalid in resource_defaults", spec_with(resource_defaults__on_invalid="quarantine")),
    (
        "schedule mapping",
        spec_with(schedule={"cron": "0 * * * *", "timezone": "Europe/Paris", "enabled": True}),
    ),
    *(
        (f"token url: {case}", spec_with(client__auth={"type": kind, key: url}))
        for case, (kind, key), url in SECURE_TOKEN_URLS
    ),
]


@pytest.mark.parametrize(("case", "spec"), VALID, ids=[c[0] for c in VALID])
def test_valid_specs_load(tmp_path, case, spec):
    loaded = load_spec_file(write(tmp_path, spec))
    assert loaded.name == "shop"


def test_seed_specs_load_with_the_expected_shape():
    specs = {s.name: s for s in load_specs(SEED_SPECS)}
    assert sorted(specs) == [
        "ad_analytics",
        "ledger",
        "marketing_api",
        "native_ads",
        "reports",
        "workspace_docs",
    ]
    assert sum(len(s.resources) for s in specs.values()) == 20
    parents = {(s.name, r.name): r.parent for s in specs.values() for r in s.resources if r.parent}
    assert parents == {
        ("marketing_api", "adaccounts"): "organizations",
        ("marketing_api", "creatives"): "adaccounts",
        ("marketing_api", "ads"): "adaccounts",
        ("native_ads", "audiences"): "accounts",
        ("native_ads", "campaigns"): "accounts",
        ("native_ads", "audience_rules"): "accounts",
        ("native_ads", "conversion_rules"): "accounts",
        ("native_ads", "motion_ads"): "campaigns",
        ("native_ads", "campaign_items"): "campaigns",
    }
    marketing = specs["marketing_api"]
    assert isinstance(marketing.resource("organizations").paginator, TemplatedCursorPaginatorSpec)
    assert marketing.resource("organizations").error_handler.retry_on_status_codes == (403,)
    ledger = specs["ledger"].resource("resource_name")
    assert isinstance(ledger.paginator, OffsetPaginatorSpec) and ledger.paginator.limit == 5
    assert ledger.endpoint["params"] == {"limit": 200}
    assert {c.name: c.data_type for c in ledger.columns}["updated_at"] == "timestamp"


def test_ancestor_placeholders_are_carried_down_through_the_parent():
    native = {s.name: s for s in load_specs(SEED_SPECS)}["native_ads"]
    assert native.resource("campaigns").include_from_parent == ("id",)
    items = native.resource("campaign_items")
    assert items.endpoint["params"] == {
        "parent_id": {"type": "resolve", "resource": "campaigns", "field": "id"},
        "account_id": {"type": "resolve", "resource": "campaigns", "field": "_accounts_id"},
    }


def test_nearest_error_handler_wins_field_by_field(tmp_path):
    spec = spec_with(
        client__error_handler={"max_retries": 7, "backoff_factor": 3},
        resource_defaults__error_handler={"max_retries": 5},
        resources__1__error_handler={"retry_on_status_codes": [503]},
    )
    loaded = load_spec_file(write(tmp_path, spec))
    orgs, accounts = loaded.resource("organizations"), loaded.resource("adaccounts")
    assert (orgs.error_handler.max_retries, orgs.error_handler.backoff_factor) == (5, 3)
    assert accounts.error_handler.retry_on_status_codes == (503,)
    assert accounts.error_handler.max_retries == 5


def test_folder_lists_every_broken_file_and_duplicate_names(tmp_path, monkeypatch):
    """One exact line per broken file, then one per name an earlier file already took."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE, "b.yaml")
    write(tmp_path, spec_with(name="other", client__auth={"type": "x"}), "c.yaml")
    with pytest.raises(SpecValidationError) as caught:
        load_specs(tmp_path)
    assert str(caught.value).splitlines() == [
        "c.yaml: client.auth.type: unknown auth type 'x'; allowed: api_key, bearer, http_basic,"
        " oauth2, oauth2_client_credentials, session",
        "b.yaml: name: 'shop' is already the name of a.yaml",
    ]


#: (case, changes to BASE, the lines its file is refused with, in order)
SEVERAL_MISTAKES = [
    (
        "three mistakes in three places",
        {
            "client__auth": {"type": "x"},
            "resources__0__write_disposition": "upsert",
            "resources__1__schema": "id: int",
        },
        [
            "shop.yaml: client.auth.type: unknown auth type 'x'; allowed: api_key, bearer,"
            " http_basic, oauth2, oauth2_client_credentials, session",
            "shop.yaml: resource 'organizations': write_disposition: unknown write disposition"
            " 'upsert'; allowed: append, merge, replace, skip",
            "shop.yaml: resource 'adaccounts': schema: must map field names to a type or"
            " {type, nullable}",
        ],
    ),
    (
        "two mistakes in one resource and one in the client",
        {
            "resources__0__write_disposition": "upsert",
            "resources__0__endpoint__data_selector": "",
            "client__concurrency": 0,
        },
        [
            "shop.yaml: resource 'organizations': endpoint.data_selector: must be a JSONPath"
            " string such as data or results[*]",
            "shop.yaml: resource 'organizations': write_disposition: unknown write disposition"
            " 'upsert'; allowed: append, merge, replace, skip",
            "shop.yaml: client.concurrency: must be a whole number of parallel requests from 1"
            " to 64 or auto, got 0",
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "expected"), SEVERAL_MISTAKES, ids=[c[0] for c in SEVERAL_MISTAKES]
)
def test_every_mistake_of_a_file_is_reported_in_one_round(
    tmp_path, monkeypatch, case, changes, expected
):
    """Validation goes on past the first problem: each independent mistake is one line of
    the same error, in the order of the file (client auth, resources, then the client)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec_file(write(tmp_path, spec_with(**changes)))
    assert str(caught.value).splitlines() == expected
    with pytest.raises(SpecValidationError) as folder:
        load_specs(tmp_path)
    assert [e.line() for e in folder.value.errors] == expected


def test_validation_lines_are_capped_with_a_count_of_the_rest(tmp_path, monkeypatch):
    """A folder with more problems than the cap lists the first ones and `and N more`."""
    monkeypatch.chdir(tmp_path)
    for n in range(4):
        write(tmp_path, spec_with(name=f"s{n}", client__auth={"type": "x"}), f"s{n}.yaml")
    with pytest.raises(SpecValidationError) as caught:
        load_specs(tmp_path)
    lines = caught.value.lines(most=2)
    assert lines[:2] == [e.line() for e in caught.value.errors[:2]]
    assert lines[2:] == ["and 2 more"]


@pytest.mark.parametrize(
    ("selector", "document", "expected"),
    [
        (
            "organizations.*.organization",
            {"organizations": [{"organization": {"id": 1}}]},
            [{"id": 1}],
        ),
        (
            "organizations.*.organization",
            {"organizations": {"a": {"organization": {"id": 2}}}},
            [{"id": 2}],
        ),
        ("data", {"data": [1, 2]}, [[1, 2]]),
    ],
)
def test_star_selects_array_elements_and_object_members(selector, document, expected):
    from dlt.common import jsonpath

    assert jsonpath.find_values(normalize_selector(selector), document) == expected


def test_concurrency_parallelizes_every_resource_of_the_source(tmp_path):
    from restsync_assets.resources import Credentials
    from restsync_assets.runtime.source import build_source, source_config

    creds = Credentials("shop", "id", "secret", None, None, "http://127.0.0.1:9/token")
    parallel = load_spec_file(write(tmp_path, spec_with(client__concurrency=8)))
    assert parallel.concurrency == 8
    config = source_config(parallel, creds)
    assert [r.get("parallelized") for r in config["resources"]] == [True, True]
    assert set(build_source(parallel, creds).resources) == {"organizations", "adaccounts"}
    sequential = load_spec_file(write(tmp_path, BASE))
    assert [r.get("parallelized") for r in source_config(sequential, creds)["resources"]] == [
        None,
        None,
    ]


SECRET_KEYS = [
    ("bearer", {"type": "bearer"}, ("token",)),
    ("bearer named", {"type": "bearer", "token": {"secret": "gh_pat"}}, ("gh_pat",)),
    ("api_key", {"type": "api_key", "name": "X-Api-Key"}, ("api_key",)),
    ("basic", {"type": "http_basic"}, ("username", "password")),
    ("basic with user name", {"type": "http_basic", "username": "bob"}, ("password",)),
    (
        "basic named",
        {"type": "http_basic", "username": {"secret": "login"}, "password": {"secret": "pw"}},
        ("login", "pw"),
    ),
    (
        "client credentials",
        {"type": "oauth2_client_credentials", "access_token_url": OAUTH_URL},
        ("client_id", "client_secret"),
    ),
    (
        "oauth2 defaults (the credentials resource's)",
        {"type": "oauth2", "token_url": OAUTH_URL},
        (),
    ),
    (
        "oauth2 named",
        {"type": "oauth2", "token_url": OAUTH_URL, "refresh_token": {"secret": "rt_2"}},
        ("rt_2",),
    ),
]


@pytest.mark.parametrize(("case", "auth", "expected"), SECRET_KEYS, ids=[c[0] for c in SECRET_KEYS])
def test_auth_secrets_are_read_from_their_env_vars(tmp_path, case, auth, expected):
    """Each auth type's secrets (defaults or `{secret: <name>}`) are the spec's secret keys,
    read at run time from `SHOP_<NAME>`; header secrets come after them."""
    spec = spec_with(
        client__auth=auth, client__headers={"Authorization": {"secret": "authorization"}}
    )
    loaded = load_spec_file(write(tmp_path, spec))
    assert loaded.secret_keys == (*expected, "authorization")


def test_restsync_validate_names_file_key_secret_form_and_env_var(tmp_path, monkeypatch, capsys):
    """The issue's example: a literal token in an Authorization header fails validation."""
    from restsync_assets.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "source_specs").mkdir()
    spec = spec_with(name="gh", client__headers={"Authorization": "Bearer ghp_0123456789"})
    write(tmp_path / "source_specs", spec, "gh.yaml")
    assert main(["validate", "source_specs"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "source_specs/gh.yaml: client.headers.Authorization: secrets never live in YAML: write"
        " {secret: authorization} and set GH_AUTHORIZATION (or sources.gh.authorization in"
        " .dlt/secrets.toml)"
    ]


def test_restsync_validate_lists_every_file_and_warns_of_append_with_a_key(
    tmp_path, monkeypatch, capsys
):
    """`restsync validate` reports the good files (with a warning where `append` meets a
    `primary_key`, which would append the same rows again), then every problem of every bad
    file, and exits 1 while any file is bad."""
    from restsync_assets.cli import main

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "source_specs"
    folder.mkdir()
    write(folder, spec_with(resource_defaults__write_disposition="append"), "shop.yaml")
    write(
        folder, spec_with(name="bad", client__concurrency=0, client__auth={"type": "x"}), "x.yaml"
    )
    assert main(["validate", "source_specs"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["ok  shop.yaml: shop (2 resources)"]
    append_warning = (
        "primary_key: write_disposition is append, so the key does not deduplicate: a re-run"
        " or an overlapping window appends the same rows again; use write_disposition: merge"
        " to upsert by the key"
    )
    assert err.splitlines() == [
        f"warning: source_specs/shop.yaml: resource 'organizations': {append_warning}",
        f"warning: source_specs/shop.yaml: resource 'adaccounts': {append_warning}",
        "source_specs/x.yaml: client.auth.type: unknown auth type 'x'; allowed: api_key, bearer,"
        " http_basic, oauth2, oauth2_client_credentials, session",
        "source_specs/x.yaml: client.concurrency: must be a whole number of parallel requests"
        " from 1 to 64 or auto, got 0",
    ]


def test_dlt_auth_is_built_with_the_resolved_secrets_and_never_resolved_by_dlt(tmp_path):
    """dlt's own auth objects, filled with restsync's secrets and marked resolved, so
    `create_auth` hands them to requests as they are (no ConfigFieldMissingException)."""
    from dlt.sources.rest_api.config_setup import create_auth

    from restsync_assets.resources import Credentials
    from restsync_assets.runtime.http.masking import registered_secrets
    from restsync_assets.runtime.source import build_auth

    extra = {"username": "alice", "password": "pa55-word", "token": "tok-123456"}
    creds = Credentials("shop", "id-1", "secret-1", None, None, None, extra=extra)
    cases = {
        "bearer": ({"type": "bearer"}, {"token": "tok-123456"}),
        "http_basic": ({"type": "http_basic"}, {"username": "alice", "password": "pa55-word"}),
        "oauth2_client_credentials": (
            {"type": "oauth2_client_credentials", "access_token_url": OAUTH_URL},
            {"client_id": "id-1", "client_secret": "secret-1", "access_token_url": OAUTH_URL},
        ),
    }
    for kind, (auth, fields) in cases.items():
        spec = load_spec_file(write(tmp_path, spec_with(client__auth=auth)))
        built = build_auth(spec, creds)
        assert create_auth(built) is built, kind
        assert {k: built[k] for k in fields} == fields, kind
    basic = "YWxpY2U6cGE1NS13b3Jk"  # base64 of alice:pa55-word, as sent on the wire
    assert {"pa55-word", "tok-123456", "secret-1", basic} <= set(registered_secrets())


def test_endpoint_auth_and_named_oauth2_secrets_are_built_from_their_secrets(tmp_path, warehouse):
    """An endpoint's own auth is built like the client's; restsync's oauth2 reads the
    secrets a spec names instead of `<NAME>_CLIENT_SECRET` and `<NAME>_REFRESH_TOKEN`."""
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

    from restsync_assets.resources import Credentials
    from restsync_assets.runtime.source import source_config

    named = {
        "type": "oauth2",
        "token_url": OAUTH_URL,
        "client_secret": {"secret": "app_secret"},
        "refresh_token": {"secret": "offline_token"},
    }
    spec = load_spec_file(
        write(
            tmp_path,
            spec_with(
                client__auth=named,
                resources__0__endpoint__auth={"type": "bearer", "token": {"secret": "org_token"}},
            ),
        )
    )
    assert spec.secret_keys == ("app_secret", "offline_token", "org_token")
    extra = {"app_secret": "named-secret", "offline_token": "named-refresh", "org_token": "org-tok"}
    creds = Credentials("shop", "id-1", "default-secret", None, None, None, extra=extra)
    config = source_config(spec, creds)
    oauth = config["client"]["auth"]
    assert (oauth.client_id, oauth.client_secret, oauth.grant_type) == (
        "id-1",
        "named-secret",
        "refresh_token",
    )
    # each resource's auth tags its requests with the resource (`ResourceAuth`) and wraps
    # the endpoint's own auth, or the client's
    endpoint_auth = config["resources"][0]["endpoint"]["auth"].inner
    assert isinstance(endpoint_auth, BearerTokenAuth) and endpoint_auth.token == "org-tok"
    assert config["resources"][1]["endpoint"]["auth"].inner is oauth
    assert [r["endpoint"]["auth"].resource for r in config["resources"]] == [
        r["name"] for r in config["resources"]
    ]


def _dlt_expanded(spec: dict) -> dict:
    """Each resource as dlt's `rest_api` expands it: defaults merged, path params bound.

    One resource at a time: dlt merges `columns` into the shared defaults in place, so a
    resource's hint on a column the defaults declare leaks into the resources expanded with
    it (dlt 1.31); restsync merges every resource into its own copy of the defaults.
    """
    from dlt.sources.rest_api.config_setup import expand_and_index_resources

    defaults = spec.get("resource_defaults") or {}
    return {
        name: resource
        for raw in spec["resources"]
        for name, resource in expand_and_index_resources(
            [copy.deepcopy(raw)], copy.deepcopy(defaults)
        ).items()
    }


def test_plain_params_fill_the_path_and_leave_the_query_as_in_dlt(tmp_path):
    """Issue 8: `orgs/{org}/repos` with `params: {org: acme}` requests `orgs/acme/repos`
    without an `org` query param, exactly as dlt binds it; a plain param wins over the
    `{<name>_id}` inference."""
    spec = spec_with(
        resources__0__endpoint={
            "path": "/v1/orgs/{org}/repos/{kind}",
            "params": {"org": "acme", "kind": 5, "per_page": 10},
        },
        resources__1__endpoint={
            "path": "/v1/organizations/{organization_id}/adaccounts",
            "params": {"organization_id": "o-7"},
        },
    )
    loaded = load_spec_file(write(tmp_path, spec))
    expanded = _dlt_expanded(spec)
    for resource in loaded.resources:
        theirs = expanded[resource.name]["endpoint"]
        assert resource.endpoint["path"] == theirs["path"]
        assert resource.endpoint["params"] == theirs["params"]
        assert resource.parent is None
    assert loaded.resource("organizations").endpoint["path"] == "/v1/orgs/acme/repos/5"
    assert loaded.resource("adaccounts").endpoint["params"] == {}


def test_plain_and_resolve_params_together_in_a_child_path(tmp_path):
    spec = spec_with(
        resources__1__endpoint={
            "path": "/v1/orgs/{org}/repos/{repo_id}/issues",
            "params": {
                "org": "acme",
                "repo_id": {"type": "resolve", "resource": "organizations", "field": "id"},
            },
        }
    )
    child = load_spec_file(write(tmp_path, spec)).resource("adaccounts")
    assert child.parent == "organizations"
    assert child.endpoint["path"] == "/v1/orgs/acme/repos/{repo_id}/issues"
    assert child.endpoint["params"] == {
        "repo_id": {"type": "resolve", "resource": "organizations", "field": "id"}
    }


def test_resource_defaults_merge_as_dlt_merges_them(tmp_path):
    """Endpoint keys, params and json one level deep, columns column by column, every other
    key the resource's over the defaults', and a default path never used: as dlt's merge."""
    spec = spec_with(
        resource_defaults={
            "primary_key": "id",
            "write_disposition": "merge",
            "max_table_nesting": 1,
            "columns": {"id": {"data_type": "text"}, "name": {"nullable": False}},
            "endpoint": {
                "path": "/v1/not_used",
                "data_selector": "data",
                "params": {"per_page": 4, "sort": "asc"},
                "json": {"a": 1, "b": {"c": 2}},
            },
        },
        resources=[
            "orgs",
            {
                "name": "users",
                "endpoint": {"params": {"per_page": 5}, "json": {"b": {"d": 3}}},
                "columns": {"name": {"data_type": "text"}},
                "write_disposition": "append",
            },
            {"name": "teams", "endpoint": {"path": "/v1/teams", "data_selector": "teams"}},
        ],
    )
    loaded = load_spec_file(write(tmp_path, spec))
    expanded = _dlt_expanded(spec)
    for resource in loaded.resources:
        theirs = expanded[resource.name]
        for key in ("path", "params", "json"):
            assert resource.endpoint.get(key) == theirs["endpoint"].get(key), (resource.name, key)
        assert resource.data_selector == theirs["endpoint"]["data_selector"]
        assert resource.hints["columns"] == theirs["columns"]
        assert resource.hints["max_table_nesting"] == theirs["max_table_nesting"]
        assert resource.write_disposition == theirs["write_disposition"]
        assert resource.primary_key == theirs["primary_key"]
    users = loaded.resource("users")
    assert users.endpoint["path"] == "users"
    assert users.endpoint["params"] == {"per_page": 5, "sort": "asc"}
    assert users.endpoint["json"] == {"a": 1, "b": {"d": 3}}
    assert users.hints["columns"] == {
        "id": {"name": "id", "data_type": "text"},
        "name": {"name": "name", "nullable": False, "data_type": "text"},
    }


def test_owners_and_tags_merge_spec_then_resource(tmp_path):
    """A resource's owners add to its spec's (defaults included); its tags override the spec's."""
    spec = load_spec_file(
        write(
            tmp_path,
            spec_with(
                owners=["jane@example.com"],
                tags={"domain": "sales", "tier": "silver"},
                resources__1__owners=["team:ads", "jane@example.com"],
                resources__1__tags={"tier": "gold"},
            ),
        )
    )
    orgs, accounts = spec.resource("organizations"), spec.resource("adaccounts")
    assert orgs.owners == ("jane@example.com",)
    assert accounts.owners == ("jane@example.com", "team:ads")
    assert orgs.tags == {"domain": "sales", "tier": "silver"}
    assert accounts.tags == {"domain": "sales", "tier": "gold"}
    assert "owners" not in accounts.hints and "tags" not in accounts.hints  # not handed to dlt


def test_each_resource_knows_the_line_that_declares_it(tmp_path):
    """`ResourceSpec.line` is the 1-based line of the resource's list item, shorthand included."""
    text = (
        "# a comment\n"
        "name: shop\n"
        "client: {base_url: 'https://api.example.com'}\n"
        "resources:\n"
        "  - users\n"
        "\n"
        "  - name: orders\n"
        "    endpoint: /v1/orders\n"
    )
    spec = load_spec_file(write(tmp_path, text))
    assert {r.name: r.line for r in spec.resources} == {"users": 5, "orders": 7}


#: (case, a paginator as the YAML writes it, the model the spec holds)
PAGINATOR_FORMS = [
    (
        "restsync's templated cursor",
        {"type": "cursor", "cursor_value": "{{ response.next }}"},
        "templated_cursor",
    ),
    ("dlt's cursor", {"type": "cursor", "cursor_path": "next", "cursor_param": "c"}, "dlt"),
    ("restsync's offset", {"type": "offset", "limit": 5}, "offset_without_total"),
    ("dlt's offset in the body", {"type": "offset", "limit": 5, "offset_body_path": "o"}, "dlt"),
    ("dlt's json_link", {"type": "json_link", "next_url_path": "next"}, "dlt"),
    ("a dlt paginator name", "single_page", "dlt"),
]


@pytest.mark.parametrize(
    ("case", "paginator", "kind"), PAGINATOR_FORMS, ids=[c[0] for c in PAGINATOR_FORMS]
)
def test_paginator_union_holds_the_model_the_validator_chose(tmp_path, case, paginator, kind):
    """A paginator is restsync's own or dlt's by its keys, whether the spec loader or the
    model's discriminated union reads it; dlt's own keep the config as written, for dlt."""
    from pydantic import TypeAdapter

    from restsync_assets.specs.model import PAGINATOR_MODELS, DltPaginatorSpec, PaginatorSpec

    spec = load_spec_file(write(tmp_path, spec_with(resources__0__endpoint__paginator=paginator)))
    loaded = spec.resource("organizations").paginator
    assert type(loaded) is PAGINATOR_MODELS[kind]
    assert TypeAdapter(PaginatorSpec).validate_python(paginator) == loaded
    if isinstance(loaded, DltPaginatorSpec):
        assert loaded.config == paginator


def test_auth_union_reads_a_missing_type_as_bearer():
    """dlt's default auth type is bearer; the model's union agrees with the spec loader."""
    from pydantic import TypeAdapter

    from restsync_assets.specs.model import AuthSpec, BearerAuthSpec, SecretRef

    auth = TypeAdapter(AuthSpec).validate_python({"token": {"secret": "gh_pat"}})
    assert auth == BearerAuthSpec(token=SecretRef(secret="gh_pat"))
