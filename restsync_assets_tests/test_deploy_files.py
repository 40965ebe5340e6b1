"""The deploy files and the run choices they rely on, checked without any server.

`deploy/k8s/` must name the env vars restsync (and dlt) actually read; `deploy/dagster.yaml`
must queue per spec on the tag restsync's runs carry; the executor must accept what the
README tells users to put in run config.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInvalidConfigError, validate_run_config

from restsync_assets.assets import SPEC_TAG
from restsync_assets.definitions import build_definitions
from restsync_assets.executors import FORKSERVER, FORKSERVER_PRELOAD, completed
from restsync_assets.resources import CREDENTIAL_KEYS, ApiCredentials
from restsync_assets.runtime.dataset_lock import lock_key
from restsync_assets.sandbox import GRANT_TYPES
from restsync_assets.specs import load_specs

from .support import REPO, SEED_SPECS

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
#: Env vars read by dlt, not restsync: the destination's credentials.
DLT_VARS = {"DESTINATION__POSTGRES__CREDENTIALS"}


def restsync_settings_vars() -> set[str]:
    """Every env var name restsync's code reads literally (`os.environ...("NAME"`)."""
    pattern = re.compile(
        r"""os\.(?:environ(?:\.get)?|getenv)\s*[\(\[]\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    return {
        name
        for path in (REPO / "restsync_assets").rglob("*.py")
        for name in pattern.findall(path.read_text())
    }


def k8s_secret() -> dict[str, str]:
    documents = list(yaml.safe_load_all((K8S / "secrets.yaml").read_text()))
    (secret,) = [d for d in documents if d["metadata"]["name"] == "restsync-secrets"]
    return secret["stringData"]


def k8s_values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def code_location(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def dockerfile_env() -> dict[str, str]:
    text = (K8S / "Dockerfile").read_text().replace("\\\n", " ")
    return dict(
        re.findall(r"([A-Z][A-Z0-9_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", text, re.M)))
    )


def test_every_k8s_env_var_is_one_restsync_or_dlt_reads():
    """Plain env entries of the code location and the image's ENV are restsync settings, and
    the secret's keys are restsync settings, spec credentials or dlt's destination setting."""
    settings = restsync_settings_vars()
    assert {"RESTSYNC_DESTINATION", "RESTSYNC_PIPELINES_DIR"} <= settings  # the scan sees them
    plain = {e["name"] for e in code_location(k8s_values())["env"]} | set(dockerfile_env())
    assert plain - settings == set()
    credentials = {
        f"{spec.name.upper()}_{key.upper()}"
        for spec in load_specs(SEED_SPECS)
        for key in (*CREDENTIAL_KEYS, *spec.secret_keys)
    }
    assert set(k8s_secret()) - settings - credentials - DLT_VARS == set()


@pytest.mark.parametrize("spec", sorted(GRANT_TYPES))
def test_the_k8s_secret_gives_each_seed_spec_its_credentials(spec, monkeypatch):
    """With the secret's keys as env vars, restsync's own credential lookup finds the client
    id and secret (and the refresh token for the refresh-token grant) of every seed spec."""
    secret = k8s_secret()
    for key in secret:
        monkeypatch.setenv(key, f"value-of-{key}")
    resolved = ApiCredentials(source=spec).resolve()
    name = spec.upper()
    assert resolved.client_id == f"value-of-{name}_CLIENT_ID"
    assert resolved.client_secret == f"value-of-{name}_CLIENT_SECRET"
    if GRANT_TYPES[spec] == "refresh_token":
        assert resolved.refresh_token == f"value-of-{name}_REFRESH_TOKEN"


def test_the_k8s_secret_gives_dlt_the_warehouse(monkeypatch, tmp_path):
    """dlt resolves the PostgreSQL destination from the secret's key (the name dlt reads)."""
    from restsync_assets.runtime.destination import build_pipeline

    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path))
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", k8s_secret()["DESTINATION__POSTGRES__CREDENTIALS"]
    )
    (ledger,) = [s for s in load_specs(SEED_SPECS) if s.name == "ledger"]
    credentials = build_pipeline(ledger).destination_client().config.credentials
    assert (credentials.host, credentials.database) == ("db.internal", "warehouse")


def test_k8s_code_location_serves_restsync_definitions_with_the_secret():
    values = k8s_values()
    location = code_location(values)
    assert location["dagsterApiGrpcArgs"] == ["-m", "restsync_assets.definitions"]
    assert "restsync_assets.definitions" in (K8S / "Dockerfile").read_text().splitlines()[-1]
    assert location["envSecrets"] == [{"name": "restsync-secrets"}]
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "restsync-secrets"}]


@pytest.mark.parametrize(
    ("path", "limits_key", "pool_limit_key"),
    [
        (DEPLOY / "dagster.yaml", "tag_concurrency_limits", "default_limit"),
        (K8S / "values.yaml", "tagConcurrencyLimits", "defaultLimit"),
    ],
    ids=["dagster.yaml", "helm-values"],
)
def test_the_run_queue_allows_one_run_per_spec_and_parallel_loads(path, limits_key, pool_limit_key):
    """Both instances queue one run per value of the tag restsync's schedules put on runs, and
    let more than one load into the warehouse pool at a time."""
    concurrency = yaml.safe_load(Path(path).read_text())["concurrency"]
    (limit,) = concurrency["runs"][limits_key]
    assert limit == {"key": SPEC_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert concurrency["pools"][pool_limit_key] > 1


def test_schedule_runs_carry_the_spec_tag():
    """Every schedule (a spec's cron and the partitioned ones) tags its runs with its spec."""
    specs = load_specs(SEED_SPECS)
    defs = build_definitions(specs)
    tagged = {}
    for schedule in defs.schedules or []:
        (spec,) = [s.name for s in specs if schedule.name.startswith(f"{s.name}_")]
        resolved = defs.resolve_schedule_def(schedule.name)
        tags = {**resolved.job.tags, **resolved.tags}  # a run's tags: the job's, the schedule's
        tagged[schedule.name] = (spec, tags.get(SPEC_TAG))
    assert len(tagged) >= len(specs)
    assert {name: spec for name, (spec, _) in tagged.items()} == {
        name: tag for name, (_, tag) in tagged.items()
    }


EXECUTION_CASES = [
    # destination, run config's execution, accepted, executor after defaults
    ("duckdb", None, True, "in_process"),
    ("duckdb", {"multiprocess": {"max_concurrent": 2}}, True, "multiprocess"),
    ("duckdb", {"celery": {}}, False, None),
    ("postgres", None, True, "multiprocess"),
    ("postgres", {"in_process": {}}, True, "in_process"),
    ("postgres", {"celery": {"broker": {"env": "RESTSYNC_CELERY_BROKER"}}}, True, "celery"),
    ("postgres", {"bogus": {}}, False, None),
]


@pytest.mark.parametrize(("destination", "execution", "accepted", "mode"), EXECUTION_CASES)
def test_run_config_chooses_the_executor(destination, execution, accepted, mode, monkeypatch):
    """`execution: config: <mode>` picks Dagster's executor per run; the default follows the
    destination; Celery needs a server destination; anything else is refused."""
    monkeypatch.setenv("RESTSYNC_DESTINATION", destination)
    monkeypatch.setenv("RESTSYNC_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672/x")
    job = build_definitions(load_specs(SEED_SPECS)).resolve_implicit_global_asset_job_def()
    run_config = {} if execution is None else {"execution": {"config": execution}}
    if not accepted:
        with pytest.raises(DagsterInvalidConfigError, match="unexpected config entry"):
            validate_run_config(job, run_config)
        return
    (chosen,) = validate_run_config(job, run_config)["execution"]["restsync_executor"]
    assert chosen == mode


def test_server_default_starts_steps_from_a_forkserver(monkeypatch):
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    job = build_definitions(load_specs(SEED_SPECS)).resolve_implicit_global_asset_job_def()
    config = validate_run_config(job, {})["execution"]["restsync_executor"]["multiprocess"]
    assert "forkserver" in config["start_method"]
    assert config["start_method"]["forkserver"]["preload_modules"] == FORKSERVER_PRELOAD


#: (case, mode, run config of the mode, what the executor is made with)
COMPLETED = [
    (
        "multiprocess, max_concurrent only",
        "multiprocess",
        {"max_concurrent": 5},
        {"max_concurrent": 5, "start_method": FORKSERVER},
    ),
    ("multiprocess, nothing", "multiprocess", {}, {"start_method": FORKSERVER}),
    (
        "multiprocess, spawn asked for",
        "multiprocess",
        {"start_method": {"spawn": {}}},
        {"start_method": {"spawn": {}}},
    ),
    ("in process", "in_process", {}, {}),
]


@pytest.mark.parametrize(("case", "mode", "config", "made"), COMPLETED)
def test_a_multiprocess_config_without_start_method_keeps_the_forkserver(case, mode, config, made):
    """`{multiprocess: {max_concurrent: 5}}` (docs/performance.md's advice for latency-bound
    specs) still starts steps from restsync's forkserver, not Dagster's default `spawn`."""
    assert completed(mode, config) == made


@pytest.mark.parametrize("module", FORKSERVER_PRELOAD)
def test_forkserver_preload_names_modules_that_import(module):
    """multiprocessing skips a preload module that fails to import without a word, so a name
    that a Dagster or dlt upgrade moved would silently cost every step its import again."""
    assert importlib.import_module(module).__name__ == module


def test_repo_run_configs_are_accepted(monkeypatch):
    """deploy/run_celery.yaml is valid run config for restsync's jobs."""
    monkeypatch.setenv("RESTSYNC_DESTINATION", "postgres")
    monkeypatch.setenv("RESTSYNC_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672/x")
    job = build_definitions(load_specs(SEED_SPECS)).resolve_implicit_global_asset_job_def()
    run_config = yaml.safe_load((DEPLOY / "run_celery.yaml").read_text())
    execution = validate_run_config(job, run_config)["execution"]["restsync_executor"]
    assert execution["celery"]["broker"] == "pyamqp://guest:guest@127.0.0.1:5672/x"


def test_dataset_lock_keys_are_stable_bigints_distinct_per_dataset():
    names = [s.name for s in load_specs(SEED_SPECS)]
    keys = [lock_key(n) for n in names]
    assert len(set(keys)) == len(names)
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_key("ledger") == lock_key("ledger")
    digest = hashlib.sha256(b"restsync:ledger").digest()
    assert lock_key("ledger") == int.from_bytes(digest[:8], "big", signed=True)
