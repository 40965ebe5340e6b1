"""`restsync import airbyte` onto issue 21's vocabulary (w-vocab's keys): the components that
drop their stream on the vocabulary before it (`ListPartitionRouter`, `SessionTokenAuthenticator`,
OAuth token-request options, filters on the body, clock macros, epoch datetime formats) each
convert into the new keys, and restsync's own loader accepts the spec. The kiosk manifest
(a session login) is loaded end to end in `test_airbyte_import.py`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from restsync_assets.importers.airbyte import import_manifest
from restsync_assets.specs import parse_spec

CONFIG = {
    "base_url": "https://api.example.com",
    "user": "reports",
    "password": "password-value-1",
    "client_id": "client-id-2",
    "client_secret": "client-secret-3",
    "regions": "eu,us",
}
SECRETS = ("password", "client_secret")
REQUESTER = {"type": "HttpRequester", "url_base": "{{ config['base_url'] }}", "path": "/v1/things"}


def _stream(**changes: object) -> dict:
    retriever = {
        "type": "SimpleRetriever",
        "requester": {**REQUESTER, **changes.pop("requester", {})},
        "record_selector": {
            "type": "RecordSelector",
            "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
        },
        **changes.pop("retriever", {}),
    }
    return {"type": "DeclarativeStream", "name": "things", "retriever": retriever, **changes}


def _option(name: str, where: str = "request_parameter") -> dict:
    return {"type": "RequestOption", "inject_into": where, "field_name": name}


#: (case, the stream, what restsync's spec must hold (resource, or `client.auth` under "auth"))
CASES = [
    (
        "ListPartitionRouter: for_each",
        _stream(
            requester={"path": "/v1/{{ stream_partition.region }}/things"},
            retriever={
                "partition_router": {
                    "type": "ListPartitionRouter",
                    "cursor_field": "region",
                    "values": "{{ config['regions'] }}",
                }
            },
        ),
        {
            "for_each": {"field": "region", "values": ["eu", "us"]},
            "endpoint": {"path": "/v1/{region}/things"},
        },
    ),
    (
        "SessionTokenAuthenticator: session",
        _stream(
            requester={
                "authenticator": {
                    "type": "SessionTokenAuthenticator",
                    "login_requester": {
                        **REQUESTER,
                        "path": "/login",
                        "http_method": "POST",
                        "request_body_json": {
                            "user": "{{ config['user'] }}",
                            "pass": "{{ config['password'] }}",
                        },
                    },
                    "session_token_path": ["session", "id"],
                    "expiration_duration": "PT1H",
                    "request_authentication": {"type": "Bearer"},
                }
            }
        ),
        {
            "auth": {
                "type": "session",
                "login": {
                    "url": "https://api.example.com/login",
                    "method": "POST",
                    "json": {"user": "reports", "pass": {"secret": "password"}},
                },
                "token_path": "session.id",
                "prefix": "Bearer ",
                "expires_after": "PT1H",
            }
        },
    ),
    (
        "OAuthAuthenticator: token-request options",
        _stream(
            requester={
                "authenticator": {
                    "type": "OAuthAuthenticator",
                    "token_refresh_endpoint": "https://api.example.com/oauth/token",
                    "grant_type": "urn:example:grant:account",
                    "client_id": "{{ config['client_id'] }}",
                    "client_secret": "{{ config['client_secret'] }}",
                    "refresh_request_body": {"account": "acme"},
                    "refresh_request_headers": {
                        "Authorization": "Basic {{ base64encode(config['client_id'] ~ ':' ~ config['client_secret']) }}"
                    },
                    "access_token_name": "data.token",
                    "expires_in_name": "data.valid_until",
                    "token_expiry_is_time_of_expiration": True,
                    "token_expiry_date_format": "%Y-%m-%d %H:%M:%S",
                }
            }
        ),
        {
            "auth": {
                "type": "oauth2",
                "grant_type": "urn:example:grant:account",
                "client_auth": "basic",
                "token_request_body": {"account": "acme"},
                "access_token_field": "data.token",
                "expires_at_field": "data.valid_until",
                "expires_at_format": "%Y-%m-%d %H:%M:%S",
            }
        },
    ),
    (
        "HttpResponseFilter predicate: response_rules",
        _stream(
            requester={
                "error_handler": {
                    "type": "DefaultErrorHandler",
                    "response_filters": [
                        {
                            "type": "HttpResponseFilter",
                            "action": "FAIL",
                            "predicate": "{{ response.get('ok') == false }}",
                        }
                    ],
                }
            }
        ),
        {
            "error_handler": {
                "response_rules": [{"when": "{{ response.get('ok') == false }}", "action": "fail"}]
            }
        },
    ),
    (
        "clock macro start, epoch format",
        _stream(
            incremental_sync={
                "type": "DatetimeBasedCursor",
                "cursor_field": "ts",
                "datetime_format": "%s",
                "start_datetime": "{{ day_delta(-30) }}",
                "start_time_option": _option("oldest"),
            }
        ),
        {
            "endpoint": {
                "incremental": {
                    "cursor_path": "ts",
                    "initial_value": {"type": "now", "offset": "-30d"},
                    "param_format": "epoch",
                    "start_param": "oldest",
                }
            }
        },
    ),
]


def _holds(got: object, expected: object) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(_holds(got.get(k), v) for k, v in expected.items())
    return got == expected


@pytest.mark.parametrize(("case", "stream", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_component_converts_onto_the_new_vocabulary_and_loads(
    case, stream, expected, tmp_path: Path
):
    """The stream is imported (not dropped), holds the new keys, restsync's loader accepts the
    spec, and no secret value is written."""
    properties = {k: {"type": "string", "airbyte_secret": k in SECRETS} for k in CONFIG}
    manifest = {
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "spec": {"connection_specification": {"properties": properties}},
        "streams": [stream],
    }
    path, config = tmp_path / "manifest.yaml", tmp_path / "config.json"
    path.write_text(yaml.safe_dump(manifest))
    config.write_text(json.dumps(CONFIG))
    imported = import_manifest(path, config, "things")
    assert not imported.dropped, imported.dropped
    (resource,) = imported.spec["resources"]
    expected = dict(expected)
    if "auth" in expected:
        assert _holds(imported.spec["client"]["auth"], expected.pop("auth"))
    assert _holds(resource, expected), resource
    assert parse_spec(imported.spec, tmp_path / "things.yaml").resources
    assert [s for s in SECRETS if CONFIG[s] in imported.text()] == []
