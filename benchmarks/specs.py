"""The specs each case loads, written twice: restsync YAML and the plain dlt `rest_api` config.

Both forms describe the same endpoints, paginators, keys and write dispositions, so the
restsync run and the plain dlt baseline fetch the same pages and load the same tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PAGE = 1000


def write_spec(directory: Path, spec: dict[str, Any]) -> Path:
    """Write a restsync spec dict as `<directory>/<name>.yaml`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- P1 / P4


def records_spec(name: str, base_url: str, n: int) -> dict[str, Any]:
    """One resource `items`: the `n` records of `/records/<n>` in offset pages of 1,000."""
    return {
        "name": name,
        "client": {"base_url": base_url},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {
                    "path": f"/records/{n}",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": PAGE},
                },
            }
        ],
    }


def records_dlt_config(base_url: str, n: int) -> dict[str, Any]:
    return {
        "client": {"base_url": base_url},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {
                    "path": f"/records/{n}",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": PAGE, "total_path": "total"},
                },
            }
        ],
    }


# --------------------------------------------------------------------------- P2


def _fanout_resources(parents: int, per: int, parallelized: bool = False) -> list[dict[str, Any]]:
    child: dict[str, Any] = {
        "name": "children",
        "primary_key": "id",
        "endpoint": {
            "path": f"/fanout/{parents}/parents/{{resources.parents.id}}/children",
            "params": {"per": per},
            "data_selector": "data",
            "paginator": "single_page",
        },
    }
    if parallelized:
        child["parallelized"] = True
    return [
        {
            "name": "parents",
            "primary_key": "id",
            "endpoint": {
                "path": f"/fanout/{parents}/parents",
                "data_selector": "data",
                "paginator": "single_page",
            },
        },
        child,
    ]


def fanout_spec(
    name: str, base_url: str, parents: int, per: int, concurrency: int | None = None
) -> dict[str, Any]:
    """Parents in one page, one child call per parent; `concurrency` sets `client.concurrency`."""
    client: dict[str, Any] = {"base_url": base_url}
    if concurrency is not None:
        client["concurrency"] = concurrency
    return {"name": name, "client": client, "resources": _fanout_resources(parents, per)}


def fanout_dlt_config(
    base_url: str, parents: int, per: int, parallelized: bool = False
) -> dict[str, Any]:
    """Plain dlt; `parallelized` is dlt's own resource flag (dlt's default extract workers)."""
    return {
        "client": {"base_url": base_url},
        "resources": _fanout_resources(parents, per, parallelized),
    }


# --------------------------------------------------------------------------- P5

INCREMENTAL_START = "2000-01-01T00:00:00Z"


def _incremental_resources(n: int, spec_form: bool) -> list[dict[str, Any]]:
    resources = []
    for name, with_total in (("events", True), ("events_nototal", False)):
        paginator: dict[str, Any] = {"type": "offset", "limit": PAGE}
        if not spec_form:  # plain dlt needs to be told there is no total
            paginator["total_path"] = "total" if with_total else None
            if not with_total:
                paginator["stop_after_empty_page"] = True
        resources.append(
            {
                "name": name,
                "primary_key": "id",
                "write_disposition": "merge",
                "endpoint": {
                    "path": f"/inc/{n}/{name}",
                    "data_selector": "data",
                    "paginator": paginator,
                    "params": {
                        "updated_since": {
                            "type": "incremental",
                            "cursor_path": "updated_at",
                            "initial_value": INCREMENTAL_START,
                        }
                    },
                },
            }
        )
    return resources


def incremental_spec(name: str, base_url: str, n: int) -> dict[str, Any]:
    return {
        "name": name,
        "client": {"base_url": base_url},
        "resources": _incremental_resources(n, spec_form=True),
    }


def incremental_dlt_config(base_url: str, n: int) -> dict[str, Any]:
    return {
        "client": {"base_url": base_url},
        "resources": _incremental_resources(n, spec_form=False),
    }


# --------------------------------------------------------------------------- P3


def generated_spec(index: int, resources: int = 10) -> tuple[dict[str, Any], dict[str, Any]]:
    """A realistic spec `gen_<index>` of `resources` resources, and its plain dlt config.

    Per spec: top-level resources with offset pages, merge keys, a declared schema and an
    incremental cursor, plus children bound to a parent with `{account_id}`-style placeholders
    (restsync) or `{resources.accounts.id}` (dlt), the way the seed specs are written.
    """
    name = f"gen_{index:02d}"
    base_url = f"https://api{index}.example.com"
    spec_resources: list[dict[str, Any]] = []
    dlt_resources: list[dict[str, Any]] = []
    tops = max(1, resources - resources // 3)
    for r in range(resources):
        if r == 0:
            rname, path, dlt_path = "accounts", "/v1/accounts", "/v1/accounts"
        elif r < tops:
            rname = f"things_{r}"
            path = dlt_path = f"/v1/things_{r}"
        else:
            rname = f"account_items_{r}"
            path = f"/v1/accounts/{{account_id}}/items_{r}"
            dlt_path = f"/v1/accounts/{{resources.accounts.id}}/items_{r}"
        endpoint: dict[str, Any] = {"path": path, "data_selector": "data"}
        dlt_endpoint: dict[str, Any] = {"path": dlt_path, "data_selector": "data"}
        if r < tops:
            endpoint["paginator"] = {"type": "offset", "limit": 100}
            dlt_endpoint["paginator"] = {"type": "offset", "limit": 100, "total_path": "total"}
            if r % 2 == 1:
                incremental = {
                    "updated_since": {
                        "type": "incremental",
                        "cursor_path": "updated_at",
                        "initial_value": INCREMENTAL_START,
                    }
                }
                endpoint["params"] = dict(incremental)
                dlt_endpoint["params"] = dict(incremental)
        else:
            endpoint["paginator"] = dlt_endpoint["paginator"] = "single_page"
        spec_resource: dict[str, Any] = {"name": rname, "endpoint": endpoint}
        dlt_resource: dict[str, Any] = {"name": rname, "endpoint": dlt_endpoint}
        for res in (spec_resource, dlt_resource):
            res["primary_key"] = "id"
            res["write_disposition"] = "merge"
        spec_resource["schema"] = {
            "id": {"type": "integer", "nullable": False},
            "name": "string",
            "updated_at": "date-time",
            "amount": "number",
        }
        dlt_resource["columns"] = {
            "id": {"data_type": "bigint", "nullable": False},
            "name": {"data_type": "text"},
            "updated_at": {"data_type": "timestamp"},
            "amount": {"data_type": "double"},
        }
        spec_resource["error_handler"] = {"max_retries": 5, "backoff_factor": 1}
        spec_resources.append(spec_resource)
        dlt_resources.append(dlt_resource)
    spec = {
        "name": name,
        "description": f"generated benchmark spec {index}",
        "client": {"base_url": base_url},
        "resources": spec_resources,
    }
    return spec, {"client": {"base_url": base_url}, "resources": dlt_resources}


def write_generated_specs(spec_dir: Path, config_dir: Path, specs: int, resources: int) -> None:
    """Write `specs` generated restsync specs, and their plain dlt configs as YAML beside."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for i in range(specs):
        spec, config = generated_spec(i, resources)
        write_spec(spec_dir, spec)
        doc = {"name": spec["name"], "config": config}
        (config_dir / f"{spec['name']}.yaml").write_text(
            yaml.safe_dump(doc, sort_keys=False), encoding="utf-8"
        )
