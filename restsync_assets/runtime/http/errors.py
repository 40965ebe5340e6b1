"""restsync's HTTP errors and their one-line texts.

Every error the HTTP layer raises is one line naming the source (and, where known, the
resource, the masked URL, the status and the attempts) with what to check, and never holds a
secret: URLs and server answers are masked before they are quoted.
"""

from __future__ import annotations

from typing import Any

import requests
from tenacity import RetryCallState

from restsync_assets.errors import RestsyncError
from restsync_assets.settings import env_var
from restsync_assets.text import causes, one_line, plural

from .masking import mask, mask_text, mask_url
from .response_rules import matched_rule

__all__ = [
    "HttpStatusError",
    "IncompletePageError",
    "InsecureTokenUrlError",
    "LoginError",
    "NotJsonError",
    "OAuth2Error",
    "PaginationLoopError",
    "RequestFailedError",
    "RequestFailure",
    "ResponseRuleError",
    "TokenRequestError",
]

#: How much of a body an error quotes (characters, after masking; `…` when cut).
SNIPPET_CHARS = 120


# --------------------------------------------------------------------------- the errors


class RequestFailure(RestsyncError):
    """The fields restsync's one-line API errors carry: where and how a request failed."""

    kind = "api"

    def __init__(
        self,
        message: str,
        *,
        source: str,
        resource: str,
        method: str,
        url: str,
        attempts: int,
        status: int | None = None,
        response: requests.Response | None = None,
    ) -> None:
        if isinstance(self, requests.RequestException):
            super().__init__(message, response=response)  # type: ignore[call-arg]
        else:
            super().__init__(message)  # type: ignore[call-arg]
            self.response = response
        self.source = source
        self.resource = resource
        self.method = method
        self.url = url
        self.attempts = attempts
        self.status = status


class RequestFailedError(RequestFailure, RuntimeError):
    """Retries ran out. One-line message with source, resource, method, masked URL, attempts."""


class NotJsonError(RequestFailedError):
    """A 2xx answer whose body is not JSON (an HTML maintenance page, an empty 204, ...)."""


class ResponseRuleError(RequestFailedError):
    """A response whose content matched a `response_rules` entry with action `fail`."""


class IncompletePageError(RequestFailedError):
    """A 2xx page that is not whole (cut short, without the data_selector path, short of its
    `total`) on every attempt: the scan cannot be complete, so the resource fails."""


class PageProblem(RestsyncError):
    """Raised inside one attempt for a 2xx page that is not whole, so it is retried like a
    failed request (never seen outside the session): what is wrong and the answer."""

    kind = "api"

    def __init__(self, what: str, response: requests.Response, cut: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.response = response
        #: the body was cut short (a transport problem) rather than answered incomplete
        self.cut = cut


class HttpStatusError(RequestFailure, requests.HTTPError):
    """A non-retryable HTTP error (or a 401 after one token refresh), in one line.

    A :class:`requests.HTTPError` (as dlt's ``raise_for_status`` would raise) carrying the
    same fields as :class:`RequestFailedError`.
    """


class OAuth2Error(RestsyncError, RuntimeError):
    """Obtaining an access token failed. The message is one line and never contains a secret.

    ``invalid_grant``: the server refused the refresh token itself (another one may work).
    """

    kind = "auth"

    def __init__(self, message: str, *, invalid_grant: bool = False) -> None:
        super().__init__(message)
        self.invalid_grant = invalid_grant


class LoginError(RestsyncError, RuntimeError):
    """A `session` auth's login failed. The message is one line and never contains a secret."""

    kind = "auth"


class InsecureTokenUrlError(RestsyncError, ValueError):
    """The token URL is not https (and not a loopback address)."""

    kind = "config"


class TokenRequestError(RestsyncError, RuntimeError):
    """dlt's `oauth2_client_credentials` token request was refused (one line, no secret)."""

    kind = "auth"


class PaginationLoopError(RestsyncError, RuntimeError):
    """The API returned a cursor (or next URL) that was already used in this pagination."""

    kind = "api"


# --------------------------------------------------------------------------- what happened


def socket_error(error: BaseException) -> OSError | None:
    """The operating system's error under a requests/urllib3 exception (reset, refused...)."""
    for cause in causes(error):
        for candidate in (cause, *(a for a in cause.args if isinstance(a, BaseException))):
            if (
                isinstance(candidate, OSError)
                and candidate.strerror
                and not isinstance(candidate, requests.RequestException)
            ):
                return candidate
    return None


def status_line(response: requests.Response) -> str:
    """`HTTP 503 Service Unavailable`."""
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def describe(state: RetryCallState, secrets: list[str]) -> tuple[str, int | None]:
    """What an attempt got, for messages, and its status (None for an exception)."""
    if state.outcome.failed:
        error = state.outcome.exception()
        if isinstance(error, PageProblem):
            what = one_line(mask_text(error.what, secrets))
            return f"{status_line(error.response)} but {what}", error.response.status_code
        inner = socket_error(error)
        if inner is not None:
            return f"{type(error).__name__} ({type(inner).__name__}: {inner.strerror})", None
        return f"{type(error).__name__} ({one_line(mask_text(str(error), secrets))})", None
    response = state.outcome.result()
    matched = matched_rule(response)
    what = status_line(response) + (f" {matched.describe()}" if matched else "")
    return what, response.status_code


def snippet(response: requests.Response, secrets: list[str]) -> str:
    """The first characters of the body, one line, masked (``…`` when cut).

    Masked before it is cut, so a secret straddling the cut cannot leak its prefix.
    """
    text = response.content[: SNIPPET_CHARS * 32].decode("utf-8", "replace")
    return one_line(mask_text(text, secrets), SNIPPET_CHARS + 1)


# --------------------------------------------------------------------------- API requests


def gave_up(where: str, attempts: int, what: str, status: int | None) -> str:
    """Retries ran out: the last answer (or exception) and what to do."""
    advice = (
        "raise error_handler.max_retries or check the API status"
        if status is not None
        else "check the network / the API status or raise error_handler.max_retries"
    )
    return f"{where} failed after {plural(attempts, 'attempt')}: {what}; {advice}"


def page_incomplete(where: str, attempts: int, problem: PageProblem, secrets: list[str]) -> str:
    """A 2xx page that was not whole on every attempt: what was wrong and what to do."""
    status = status_line(problem.response)
    what = mask_text(problem.what, secrets)
    if problem.cut:
        advice = "check the network / the API status or raise error_handler.max_retries"
    else:
        body = snippet(problem.response, secrets)
        what += f"; the body starts with {body!r}"
        advice = "check the API status or raise error_handler.max_retries"
    return (
        f"{where} failed after {plural(attempts, 'attempt')}: {status}, but {what};"
        f" the scan is incomplete, so nothing of it was loaded; {advice}"
    )


def status_failed(
    where: str, attempts: int, response: requests.Response, refreshed: bool, secrets: list[str]
) -> str:
    """A status that was not retried (or a 401 after a token refresh), with the fix."""
    status = response.status_code
    if status in (404, 410):
        hint = (
            "if it means 'no data' (e.g. a parent without children), add"
            f" response_actions: [{{status_code: {status}, action: ignore}}] to the resource"
        )
    elif status == 401 and refreshed:
        hint = "a freshly fetched access token was rejected too; check the client's access"
    elif status in (401, 403):
        hint = "check the client's credentials, scopes and access to this resource"
    else:
        hint = f"not retried: {status} is not in error_handler.retry_on_status_codes"
    body = snippet(response, secrets)
    what = status_line(response) + (f" {body}" if body else "")
    return f"{where} failed after {plural(attempts, 'attempt')}: {what}; {hint}"


def rule_failed(where: str, attempts: int, response: requests.Response) -> str:
    """A response the spec's `response_rules` say failed (action `fail`)."""
    matched = matched_rule(response)
    return (
        f"{where} failed after {plural(attempts, 'attempt')}: {status_line(response)}"
        f" {matched.describe() if matched else ''}; the API says the request failed: fix what"
        " it names, or change the rule's action (retry, ignore)"
    )


def not_json(where: str, attempts: int, response: requests.Response, secrets: list[str]) -> str:
    """A 2xx answer whose body is empty or not JSON."""
    status = response.status_code
    after = f"after {plural(attempts, 'attempt')}"
    if not response.content:
        return (
            f"{where} answered HTTP {status} with an empty body, not JSON ({after}); if it"
            f" means 'no data', add response_actions: [{{status_code: {status}, action:"
            " ignore}] to the resource"
        )
    content_type = response.headers.get("Content-Type") or "none"
    return (
        f"{where} answered HTTP {status} with Content-Type {content_type!r}, not JSON"
        f" ({after}); the body starts with {snippet(response, secrets)!r}; the API may be"
        " down for maintenance or behind a proxy or login page"
    )


# --------------------------------------------------------------------------- token requests


def insecure_token_url(source: str, url: str) -> str:
    return (
        f"{source}: OAuth2 token_url {url!r} must be an https:// URL"
        " (plain http is only allowed for loopback hosts such as 127.0.0.1 or localhost),"
        " because client secrets and tokens are sent to it"
    )


def token_unreachable(source: str, url: str, attempts: int, error: BaseException) -> str:
    return (
        f"{source}: token request to {url} failed after {plural(attempts, 'attempt')}:"
        f" {type(error).__name__}; check that the token URL is correct and reachable from"
        " this machine (network, proxy, DNS)"
    )


def token_refused(
    source: str,
    url: str,
    response: requests.Response,
    body: Any,
    attempts: int,
    refresh_grant: bool,
    secrets: list[str],
) -> str:
    """The token endpoint said no: its error (masked) and which settings to check."""
    if isinstance(body, dict) and body.get("error"):
        detail = str(body["error"])
        if body.get("error_description"):
            detail += f": {body['error_description']}"
    else:
        detail = response.text or response.reason or ""
    status = f"HTTP {response.status_code} {one_line(mask(detail, secrets))}".strip()
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    hint = _token_hint(source, response, body, refresh_grant)
    return f"{source}: token request to {url} failed{tries}: {status} ({hint})"


def _token_hint(source: str, response: requests.Response, body: Any, refresh_grant: bool) -> str:
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    client = f"{env_var(source, 'client_id')} / {env_var(source, 'client_secret')}"
    if refresh_grant and (error == "invalid_grant" or not error):
        return (
            f"check {env_var(source, 'refresh_token')}, it may have expired or been revoked;"
            f" also check {client}"
        )
    if error == "invalid_scope":
        return "check the scopes configured for this source"
    if response.status_code >= 500:
        return "the authorization server failed; retry later"
    return f"check {client}"


def login_refused(
    source: str, url: str, response: requests.Response, env_vars: tuple[str, ...]
) -> str:
    """The login request was refused: its status and the secrets to check."""
    check = " and ".join(env_vars) if env_vars else "the login request's credentials"
    hint = (
        "the login service failed; retry later" if response.status_code >= 500 else f"check {check}"
    )
    return f"{source}: login request to {url} failed: {status_line(response)}; {hint}"


def login_without_token(source: str, url: str, token_path: str) -> str:
    return (
        f"{source}: login request to {url} answered without a token at {token_path!r};"
        " check auth.token_path"
    )


def login_unreachable(source: str, url: str, attempts: int, error: BaseException) -> str:
    inner = socket_error(error)
    what = f"{type(inner).__name__}: {inner.strerror}" if inner else type(error).__name__
    return f"{source}: login request to {url} failed after {plural(attempts, 'attempt')}: {what}"


def token_missing(
    source: str, url: str, response: requests.Response, field: str = "access_token"
) -> str:
    hint = "check the token URL" + (
        "" if field == "access_token" else " and auth.access_token_field"
    )
    return (
        f"{source}: token request to {url} failed: HTTP {response.status_code} response has"
        f" no {field}; {hint}"
    )


def rotation_not_stored(source: str, error: BaseException, secrets: list[str]) -> str:
    return (
        f"{source}: the refresh token was rotated but on_refresh_token_rotated failed with"
        f" {type(error).__name__}: {one_line(mask(str(error), secrets))}; the new refresh"
        " token is only kept in memory"
    )


def client_credentials_refused(source: str, url: str, error: requests.HTTPError, hint: str) -> str:
    """dlt's `oauth2_client_credentials` flow was refused a token."""
    response = error.response
    status = status_line(response) if response is not None else str(error)
    return f"{source}: token request to {mask_url(url)} failed: {status}; {hint}"
