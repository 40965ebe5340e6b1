"""Dagster resources: one credentials resource per spec, read at run time only."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dagster import ConfigurableResource

from restsync_assets.errors import RestsyncError
from restsync_assets.settings import env_var

#: The Dagster resource key of dagster-dlt's `DagsterDltResource`.
DLT_RESOURCE_KEY = "dlt"

CREDENTIAL_KEYS = ("client_id", "client_secret", "refresh_token", "base_url", "token_url")


class MissingCredentialError(RestsyncError, RuntimeError):
    """A required credential is set neither in the environment nor in `.dlt/secrets.toml`."""

    kind = "auth"


@dataclass(frozen=True)
class Credentials:
    """Resolved credentials of one source. `repr` never shows a secret."""

    source: str
    client_id: str | None
    client_secret: str | None
    refresh_token: str | None
    base_url: str | None
    token_url: str | None

    #: the spec's `{secret: <name>}` values, by name (None when not configured)
    extra: Mapping[str, str | None] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        return [s for s in (self.client_secret, self.refresh_token, *self.extra.values()) if s]

    def secret(self, key: str) -> str:
        """The value of a spec's `{secret: key}`, or a one-line error naming the env var."""
        value = self.extra.get(key) or (getattr(self, key) if key in CREDENTIAL_KEYS else None)
        if not value:
            raise MissingCredentialError(_missing(self.source, key))
        return value

    def require(self, key: str) -> str:
        value = getattr(self, key)
        if not value:
            raise MissingCredentialError(_missing(self.source, key))
        return value

    def __repr__(self) -> str:
        shown = {
            k: (
                "***"
                if k in ("client_secret", "refresh_token") and getattr(self, k)
                else getattr(self, k)
            )
            for k in CREDENTIAL_KEYS
        }
        return f"Credentials(source={self.source!r}, {shown})"


class ApiCredentials(ConfigurableResource):
    """OAuth credentials and URL overrides of one spec's API.

    Each value is taken, in order, from the field (when set in code; a spec's `{secret: key}`
    from `secrets`, see `given`), the env var
    `<NAME>_<KEY>` (`<NAME>` = spec name upper-cased: `AD_ANALYTICS_CLIENT_ID`,
    `..._CLIENT_SECRET`, `..._REFRESH_TOKEN`, `..._BASE_URL`, `..._TOKEN_URL`), or dlt's
    `sources.<name>.<key>` in `.dlt/secrets.toml`. Nothing is read when definitions load,
    so the Dagster UI loads without secrets; a missing required value fails the run with
    a message naming the env var.
    """

    source: str
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    base_url: str | None = None
    token_url: str | None = None
    #: the spec's `{secret: key}` values set in code, by key (else read as the others are)
    secrets: dict[str, str] = {}

    @classmethod
    def given(cls, source: str, values: Mapping[str, str]) -> ApiCredentials:
        """The credentials of `source` set in code from `values` by key (`client_id`,
        `base_url`, a `{secret: key}`'s key...): settings passed inward, not through the
        environment (`restsync demo` points the specs at its sandbox so)."""
        fields = {k: v for k, v in values.items() if k in CREDENTIAL_KEYS}
        secrets = {k: v for k, v in values.items() if k not in CREDENTIAL_KEYS}
        return cls(source=source, secrets=secrets, **fields)

    def resolve(self, secret_keys: Sequence[str] = ()) -> Credentials:
        """Read every credential now (at run time); `secret_keys` are the spec's `{secret: ...}`."""
        return Credentials(
            source=self.source,
            **{key: self._lookup(key) for key in CREDENTIAL_KEYS},
            extra={key: self._external(key) for key in secret_keys},
        )

    def _lookup(self, key: str) -> str | None:
        return getattr(self, key) or self._external(key)

    def _external(self, key: str) -> str | None:
        """`secrets[key]` set in code, else `<NAME>_<KEY>` from the environment, else
        `sources.<name>.<key>` from dlt's secrets."""
        if self.secrets.get(key):
            return self.secrets[key]
        env = os.environ.get(env_var(self.source, key))
        if env:
            return env
        return _dlt_secret(f"sources.{self.source}.{key}")


def _missing(source: str, key: str) -> str:
    return (
        f"{source}: missing {key.replace('_', ' ')}: set the env var {env_var(source, key)} "
        f"(or sources.{source}.{key} in .dlt/secrets.toml)"
    )


def _dlt_secret(key: str) -> str | None:
    import dlt

    try:
        value = dlt.secrets.get(key)
    except Exception:  # a malformed secrets.toml must not hide the env-var route
        return None
    return str(value) if value else None


def credentials_key(spec_name: str) -> str:
    """Resource key of a spec's `ApiCredentials`: `<spec>_credentials`."""
    return f"{spec_name}_credentials"
