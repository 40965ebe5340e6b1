"""`error_handler`: how requests are retried (on the client, `resource_defaults` or a resource)."""

from __future__ import annotations

from pydantic import Field, field_validator

from restsync_assets.specs.model.base import StrictModel


class ErrorHandler(StrictModel):
    """Retry rules (`error_handler`); the nearest layer wins field by field."""

    retry_on_status_codes: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retries: int = Field(3, ge=0, le=50)
    backoff_factor: float = Field(1.0, ge=0)
    max_retry_delay: float = Field(60.0, gt=0)
    timeout: float = Field(60.0, gt=0)

    @field_validator("retry_on_status_codes")
    @classmethod
    def _http_codes(cls, codes: tuple[int, ...]) -> tuple[int, ...]:
        bad = [c for c in codes if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"{bad} are not HTTP status codes (100-599)")
        return codes
