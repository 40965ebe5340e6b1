"""Settings from the environment, read lazily (never at import time)."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Files or folders that mark a project's root folder (`project_dir()`): a Python or `dg`
#: project, a Dagster workspace, or a folder of specs.
PROJECT_MARKERS = ("pyproject.toml", "dg.toml", "workspace.yaml", "source_specs")


def env_prefix(source: str) -> str:
    """`<NAME>` of a spec's env vars: the spec name upper-cased (`ad_analytics` -> `AD_ANALYTICS`)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", source).strip("_").upper() or "SOURCE"


def env_var(source: str, key: str) -> str:
    """`<NAME>_<KEY>`: the env var holding `key` (a credential or `{secret: key}`) of `source`."""
    return f"{env_prefix(source)}_{key.upper()}"


def project_dir() -> Path:
    """The user's project, under which restsync keeps every file it writes by default:
    `RESTSYNC_PROJECT_DIR`, else the nearest folder up from the working directory holding one
    of `PROJECT_MARKERS`, else the working directory. (`dg dev`, `dg launch` and `dagster dev`
    run their code servers and runs in the project's folder.) Never the installed package."""
    configured = os.environ.get("RESTSYNC_PROJECT_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


def specs_dir() -> Path:
    """`RESTSYNC_SPECS_DIR`, else the project's `source_specs/` (`project_dir()`)."""
    configured = os.environ.get("RESTSYNC_SPECS_DIR")
    if configured:
        return Path(configured).expanduser()
    return project_dir() / "source_specs"


def specs_dir_configured() -> bool:
    """Whether `RESTSYNC_SPECS_DIR` names the specs folder (else the project's are found)."""
    return bool(os.environ.get("RESTSYNC_SPECS_DIR"))


def data_dir() -> Path:
    """`data/` of the project (`project_dir()`): the default home of the warehouse and of dlt's
    pipelines, locks, rate budgets and token stores (git-ignored)."""
    return project_dir() / "data"


def duckdb_path() -> Path:
    """`RESTSYNC_DUCKDB_PATH`, else `data/restsync.duckdb` under the project (`data_dir()`)."""
    configured = os.environ.get("RESTSYNC_DUCKDB_PATH")
    if configured:
        return Path(configured).expanduser().resolve()
    return data_dir() / "restsync.duckdb"


def duckdb_path_configured() -> bool:
    """Whether `RESTSYNC_DUCKDB_PATH` names the DuckDB file (else the project's default)."""
    return bool(os.environ.get("RESTSYNC_DUCKDB_PATH"))


def destination_name() -> str:
    """`RESTSYNC_DESTINATION`: a dlt destination name configured in `.dlt/`; default `duckdb`."""
    return os.environ.get("RESTSYNC_DESTINATION", "duckdb")


def pipelines_dir() -> Path:
    """Where dlt keeps pipeline working state: `RESTSYNC_PIPELINES_DIR`, else beside the DuckDB file.

    Keeping it next to the warehouse file means two warehouses (two tests, demo and dev) never
    share dlt state, and nothing leaks into `/var/dlt` or `~/.dlt`.
    """
    configured = os.environ.get("RESTSYNC_PIPELINES_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    db = duckdb_path()
    return db.parent / f".{db.stem}_pipelines"


def arrow_pages() -> bool:
    """`RESTSYNC_ARROW_PAGES=0` turns off the Arrow fast path (every page goes through dlt's rows)."""
    return os.environ.get("RESTSYNC_ARROW_PAGES", "1").lower() not in ("0", "false", "no")


def read_ahead() -> bool:
    """`RESTSYNC_READ_AHEAD=0` turns off fetching a resource's next page while dlt handles the
    current one (`runtime/read_ahead.py`)."""
    return os.environ.get("RESTSYNC_READ_AHEAD", "1").lower() not in ("0", "false", "no")


#: DuckDB's buffer pool during loads, unless `RESTSYNC_DUCKDB_MEMORY_LIMIT` says otherwise: a
#: thirty-second of the machine's memory, capped at 64 MB. Loads stream parquet into tables, so
#: a small pool costs no time (measured at 1M records: load step 2.6 s at DuckDB's default of
#: 80% of RAM, peak RSS 484 MB; 1.7 s and 347 MB at 64 MB; 128 MB gave 373 MB; issue 13);
#: DuckDB spills to disk what does not fit. Not for merges (`duckdb_config`).
DUCKDB_MEMORY_CAP_MB = 64


def default_duckdb_memory_limit() -> str:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (AttributeError, ValueError, OSError):  # not a POSIX system: the cap
        total = DUCKDB_MEMORY_CAP_MB * 32
    return f"{max(16, min(DUCKDB_MEMORY_CAP_MB, total // 32))}MB"


def user_duckdb_memory_limit() -> str | None:
    """DuckDB's buffer pool for loads as the user chose it (`RESTSYNC_DUCKDB_MEMORY_LIMIT`)."""
    return os.environ.get("RESTSYNC_DUCKDB_MEMORY_LIMIT") or None


def duckdb_config(capped: bool = True) -> dict[str, object]:
    """DuckDB settings for loads: insertion order is not kept (less memory while loading), and
    DuckDB's buffer pool is `RESTSYNC_DUCKDB_MEMORY_LIMIT` (e.g. `512MB`), else, when `capped`,
    `default_duckdb_memory_limit()`, else DuckDB's default. Loads that merge are not capped:
    DuckDB's delete-and-insert of a merge ran out of memory under small caps (a merge of 3M
    rows into 3M failed at 32, 64 and 128 MB; issue 13)."""
    config: dict[str, object] = {"preserve_insertion_order": False}
    limit = user_duckdb_memory_limit()
    if limit or capped:
        config["memory_limit"] = limit or default_duckdb_memory_limit()
    return config


def rate_limit_url() -> str | None:
    """`RESTSYNC_RATE_LIMIT_URL` (`redis://...`): rate budgets shared across machines through
    Redis; unset, each spec's budget is a file under `pipelines_dir()` (one machine)."""
    return os.environ.get("RESTSYNC_RATE_LIMIT_URL") or None


def token_store_url() -> str | None:
    """`RESTSYNC_TOKEN_STORE_URL` (`redis://...`, or `file:///folder` every worker mounts), else
    `RESTSYNC_RATE_LIMIT_URL`: where rotated OAuth2 refresh tokens are shared by every worker
    (`runtime/token_store.py`); unset, each is a file under `pipelines_dir()` (one machine)."""
    return os.environ.get("RESTSYNC_TOKEN_STORE_URL") or rate_limit_url()
