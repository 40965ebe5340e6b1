"""`error_handler`: how requests are retried (on the client, `resource_defaults` or a resource),
and `response_rules`: what a response whose content says it failed does."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from restsync_assets.specs.model.base import StrictModel

RuleAction = Literal["retry", "fail", "ignore"]
RULE_ACTIONS: tuple[str, ...] = get_args(RuleAction)
#: the variables a rule's `when` template may read
RULE_VARIABLES = ("headers", "response")
#: `equals` when the YAML does not give one (a value, so the model dumps and loads the same)
NOT_GIVEN = "<restsync: equals not given>"


def _http_codes(codes: tuple[int, ...]) -> tuple[int, ...]:
    bad = [c for c in codes if not 100 <= c <= 599]
    if bad:
        raise ValueError(f"{bad} are not HTTP status codes (100-599)")
    return codes


def _jsonpath(path: str) -> str:
    from restsync_assets.specs.selectors import compile_jsonpath

    try:
        compile_jsonpath(path)
    except Exception as error:  # jsonpath-ng raises several exception types
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        message = f"{path!r} is not valid JSONPath ({detail}); e.g. ok, errors[0].message"
        raise ValueError(message) from None
    return path


class ResponseRule(StrictModel):
    """One of `error_handler.response_rules`: a response whose JSON matches is retried,
    failed with the API's message, or ignored (no records, paging stops).

    `path` (JSONPath into the body) matches when a value there equals `equals`, or, without
    `equals`, when one is there and not null, empty or false; `when` is a template over
    `response` and `headers` instead. Only responses of `status_codes` (default: any 2xx).
    """

    path: str | None = None
    equals: Any = NOT_GIVEN
    when: str | None = None
    action: RuleAction
    message_path: str | None = None
    status_codes: tuple[int, ...] | None = None

    @field_validator("path", "message_path")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else _jsonpath(value)

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, codes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if codes is None else _http_codes(codes)

    @field_validator("when")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from restsync_assets.specs.templates import compile_template

        template = compile_template(value)
        if not template.is_expression:
            raise ValueError(
                "must be a single {{ expression }}, e.g. \"{{ 'error' in response }}\""
            )
        unknown = sorted(template.variables - set(RULE_VARIABLES))
        if unknown:
            raise ValueError(f"template reads {unknown[0]!r}; allowed: headers, response")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> ResponseRule:
        if (self.path is None) == (self.when is None):
            raise ValueError("give exactly one condition: path (JSONPath) or when (a template)")
        if self.has_equals and self.path is None:
            raise ValueError("equals compares the value at path: give a path")
        return self

    @property
    def has_equals(self) -> bool:
        return not (isinstance(self.equals, str) and self.equals == NOT_GIVEN)


class ErrorHandler(StrictModel):
    """Retry rules (`error_handler`); the nearest layer wins field by field."""

    retry_on_status_codes: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = Field(3, ge=0, le=50)
    backoff_factor: float = Field(1.0, ge=0)
    max_retry_delay: float = Field(60.0, gt=0)
    timeout: float = Field(60.0, gt=0)
    #: tried in order on every response (first match wins); a layer's list replaces another's
    response_rules: tuple[ResponseRule, ...] = ()

    @field_validator("retry_on_status_codes")
    @classmethod
    def _http_codes(cls, codes: tuple[int, ...]) -> tuple[int, ...]:
        return _http_codes(codes)
