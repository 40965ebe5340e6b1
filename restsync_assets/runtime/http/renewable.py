"""The auth objects whose credential the session renews once when the API answers 401.

restsync's `oauth2` (`oauth.OAuth2Auth`) and `session` (`session_auth.SessionLoginAuth`) fetch
a token themselves; :class:`RestsyncSession` asks the one it was given which token a refused
request presented, invalidates it and lets the auth set a fresh one before resending.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from dlt.sources.helpers.rest_client.auth import AuthConfigBase

__all__ = ["RenewableAuth"]


class RenewableAuth(AuthConfigBase):
    """A dlt auth (`client.auth`) with a token it can fetch again.

    One instance per source holds the token: dlt deep-copies configs (to validate them), so
    copies are the instance itself, and it equals only itself."""

    def __deepcopy__(self, memo: dict[int, Any]) -> RenewableAuth:
        return self

    def __copy__(self) -> RenewableAuth:
        return self

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @abstractmethod
    def __call__(self, request: Any) -> Any:
        """Set a valid token on `request` (fetched when there is none or it expired)."""

    @abstractmethod
    def presented(self, request: Any) -> str | None:
        """The token `request` carries when this auth set it (a current or earlier one)."""

    @abstractmethod
    def invalidate(self, token: str | None = None) -> None:
        """Forget `token` (when it is still the current one): the next call fetches anew."""

    @abstractmethod
    def secrets(self) -> list[str]:
        """Every secret value this auth knows, for masking."""
