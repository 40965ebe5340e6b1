"""Every example of README.md and of every page of docs/ is run by a test.

Commands (```bash blocks): the walkthrough of the README's "Three ways to drive it" (and of
every docs page but the tutorial) runs here, in order, against a sandbox started as the
README starts it; the tutorial (docs/tutorial.md) runs here from its first command to its
last, writing its files as it shows them; each other command names the test that runs it
(`ELSEWHERE`), and a command that is none of these fails `test_every_command_is_run`.
Sample outputs (```text) are compared with what the commands print now. Spec snippets
(```yaml) load as specs, merged into the seed spec they come from; the defs.yaml snippet
loads as a component; the ```toml snippet names real credential keys. The site builds with
`mkdocs build --strict` (broken links and anchors fail), and the README's links to the docs
name pages and headings that exist.
"""

from __future__ import annotations

import copy
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import tomlkit
import yaml
from markdown.extensions.toc import slugify

from restsync_assets.cli import main
from restsync_assets.resources import CREDENTIAL_KEYS
from restsync_assets.specs import parse_spec
from restsync_assets.specs.model import ENDPOINT_KEYS, TOP_LEVEL_KEYS

from .support import BIN, REPO, SEED_SPECS, free_port

#: the README, then every page of the docs site
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
TUTORIAL = REPO / "docs" / "tutorial.md"
#: restsync installed into a project of one's own: its commands run in a fresh venv and project
OWN_PROJECT = REPO / "docs" / "own-project.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def blocks_of(page: Path) -> list[tuple[str, str]]:
    """The fenced blocks of one page: (language, body)."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text())]


#: every fenced block of every page
BLOCKS = [block for page in PAGES for block in blocks_of(page)]
#: the README's sandbox port; the tests use a free one instead
README_PORT = "8765"


def commands(pages: list[Path] | None = None) -> list[str]:
    """Every command line of the ```bash blocks of `pages` (default: every page but the
    tutorial, which `test_the_tutorial_runs` runs, and docs/own-project.md, which
    `OWN_PROJECT_COMMANDS` names the test of), comments removed."""
    lines = []
    for page in [p for p in PAGES if p not in (TUTORIAL, OWN_PROJECT)] if pages is None else pages:
        lines.extend(_bash_lines(blocks_of(page)))
    return lines


def _bash_lines(blocks: list[tuple[str, str]]) -> list[str]:
    lines = []
    for language, body in blocks:
        if language == "bash":
            for line in body.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command:
                    lines.append(command)
    return lines


#: commands run by other tests (command pattern -> the test that runs it)
ELSEWHERE = {
    r"python -m venv \.venv && \. \.venv/bin/activate": "the suite itself runs in such a venv",
    r'pip install -e "\.\[dev\]"': "the suite itself runs in such an install",
    r"restsync demo": "test_operations.py::test_demo_prints_checks_and_matches_the_sandbox",
    r"restsync check": (
        "test_warehouse_reads.py::test_restsync_check_after_restsync_demo_checks_the_demo_warehouse_and_passes"
    ),
    r"restsync check \S.*": (
        "test_operations.py::test_restsync_check_takes_a_selection_and_skips_specs_never_loaded"
    ),
    r'pip install -e "\.\[(postgres|deploy|redis)\]"': "the suite itself runs in the dev install, which includes it",
    r"export RESTSYNC_RATE_LIMIT_URL=redis://.*": (
        "test_rate_limit.py::test_three_processes_share_one_redis_budget"
    ),
    r"export (RESTSYNC_DESTINATION=postgres|DESTINATION__POSTGRES__CREDENTIALS=postgresql://.*)": (
        "test_warehouse_reads.py::test_demo_on_postgres_equals_the_sandbox_and_restsync_check_passes"
    ),
    r"dagster dev": (
        "test_asset_graph.py::test_definitions_module_loads_without_secrets_or_network"
        " (the module workspace.yaml names)"
    ),
    r"dg dev": "test_dg_project.py::test_dg_dev_serves_the_seed_assets",
    # docs/deploying.md: the team-server block, run as written against PostgreSQL
    r"(export (DAGSTER_HOME|DAGSTER_PG_URL|DESTINATION__POSTGRES__CREDENTIALS|RESTSYNC_PIPELINES_DIR)=.*"
    r'|mkdir -p "\$DAGSTER_HOME" && cp deploy/dagster\.yaml .*'
    r'|dagster asset materialize -m restsync_assets\.definitions --select "group:ledger or group:workspace_docs")': (
        "test_deploying.py::test_team_server_block_loads_two_specs_in_parallel_processes_and_records_all_in_postgresql"
    ),
    r"dagster-daemon run -m restsync_assets\.definitions": (
        "test_server_runs.py::test_a_schedule_ticks_under_dagster_daemon_and_its_queued_run_lands_in_postgresql"
    ),
    r"dagster-webserver -m restsync_assets\.definitions .*": (
        "not run as such: `dagster dev` (test_readme_commands.py) serves the same definitions"
        " through the same webserver"
    ),
    # docs/deploying.md: the Celery block, with RabbitMQ and two workers
    r"(export RESTSYNC_CELERY_BROKER=.*|dagster-celery worker start .*"
    r"|dagster asset materialize .* -c deploy/run_celery\.yaml)": (
        "test_deploying.py::test_celery_block_spreads_the_five_seed_specs_over_two_workers"
    ),
    r"(docker build|kubectl apply|helm upgrade) .*": (
        "not run here (no Docker engine or cluster): test_deploy_files.py parses the files they use"
    ),
    # docs/import-airbyte.md: the import, then the imported spec run against the sandbox
    r"restsync (import airbyte .*|run ledger_airbyte)": (
        "test_airbyte_import.py::test_the_docs_example_writes_the_spec_the_page_shows_and_it_runs"
    ),
    r"dg list defs": "test_dg_project.py::test_the_repo_is_a_dg_project",
    r"dg check defs": "test_dg_project.py::test_the_repo_is_a_dg_project",
    r"dg scaffold defs restsync_assets\.RestSyncComponent \w+": (
        "test_dg_project.py::test_a_fresh_dg_project_scaffolds_lists_and_materializes_the_component"
    ),
}
#: commands the walkthrough below runs
WALKTHROUGH = [
    r"restsync sandbox --port 8765",
    r'eval "\$\(restsync sandbox --print-env --port 8765\)"',
    r"restsync (preview|run|validate)\b.*",
]


#: commands of docs/own-project.md, run in a fresh venv outside the checkout and a new dg
#: project by test_wheel_project.py (create-dagster, which fetches its tools, excepted)
WHEEL_TEST = (
    "test_wheel_project.py::test_the_wheel_in_a_new_dg_project_keeps_every_file_in_the_project"
)
OWN_PROJECT_COMMANDS = {
    r"pip wheel --no-deps -w dist \S+": WHEEL_TEST,
    r"python -m venv \.venv && \. \.venv/bin/activate": WHEEL_TEST,
    r"pip install dist/restsync-[\w.-]+\.whl dagster-dg-cli": WHEEL_TEST,
    r"create-dagster project acme": (
        f"{WHEEL_TEST} writes the project layout create-dagster makes (create-dagster"
        " itself fetches uv and its templates from the network: not run here)"
    ),
    r"cd acme": WHEEL_TEST,
    r"dg (scaffold defs restsync_assets\.RestSyncComponent shop_api|list defs|launch --assets \"\*\")": WHEEL_TEST,
    r"restsync (validate|preview shop_api items|check)": WHEEL_TEST,
    r"restsync sandbox --port 8765 &": WHEEL_TEST,
    r'eval "\$\(restsync sandbox --print-env --port 8765\)"': WHEEL_TEST,
}

#: commands of the tutorial, each run by `test_the_tutorial_runs` as `run_tutorial_command` says
TUTORIAL_COMMANDS = [
    r"restsync sandbox --port 8765",
    r'eval "\$\(restsync sandbox --print-env --port 8765\)"',
    r"export (RESTSYNC_SPECS_DIR|RESTSYNC_DUCKDB_PATH)=\S+",
    r"mkdir -p \S+",
    r"restsync (validate|preview|run|check)\b.*",
    r"dagster dev",
]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_command_is_run(page):
    """A command of the page that no test runs fails here; so does a pointer to a missing test."""
    patterns = (
        TUTORIAL_COMMANDS
        if page == TUTORIAL
        else OWN_PROJECT_COMMANDS
        if page == OWN_PROJECT
        else [*ELSEWHERE, *WALKTHROUGH]
    )
    for command in commands([page]):
        known = [p for p in patterns if re.fullmatch(p, command)]
        assert known, f"{page_id(page)}: command not run by any test: {command}"
    for where in [*ELSEWHERE.values(), *OWN_PROJECT_COMMANDS.values()]:
        if "::" in where:
            module, test = where.split(" ")[0].split("::")
            tests = importlib.import_module(f"restsync_assets_tests.{module[:-3]}")
            assert callable(getattr(tests, test, None)), f"no such test: {where}"


def test_the_walkthrough_runs(monkeypatch, warehouse):
    """`restsync sandbox --port P` serves; `eval "$(restsync sandbox --print-env --port P)"`
    exports what points the specs at it; then every `restsync` command of the README runs, in
    order, and exits 0; their sample outputs are what they print."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the samples show an ephemeral instance
    port = str(free_port())
    restsync = [sys.executable, "-m", "restsync_assets.cli"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [*restsync, "sandbox", "--port", port],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        served = []
        while not served or served[-1] != "Press Ctrl-C to stop.":
            served.append(server.stdout.readline().strip())
        assert served[0] == f"restsync sandbox listening on http://127.0.0.1:{port}"
        served_exports = [line for line in served if line.startswith("export ")]
        exported = subprocess.run(
            [
                "bash",
                "-c",
                f'eval "$({shlex.join(restsync)} sandbox --print-env --port {port})" && env',
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        for line in exported.splitlines():
            name, _, value = line.partition("=")
            if re.fullmatch(
                r"(AD_ANALYTICS|LEDGER|MARKETING_API|NATIVE_ADS|REPORTS|WORKSPACE_DOCS)_\w+", name
            ):
                monkeypatch.setenv(name, value)
        assert os.environ["LEDGER_BASE_URL"] == f"http://127.0.0.1:{port}/ledger"
        printed_exports = subprocess.run(
            [*restsync, "sandbox", "--print-env", "--port", port],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.splitlines()
        assert (
            served_exports == printed_exports
            and len(printed_exports) == 22 + 2 + 11 + 9  # vendors chat 2, partnerhub 4, kiosk 3
        )  # OAuth2 seeds, reports (token, base URL), vendors
        printed = {}
        for command in commands():
            if not command.startswith("restsync ") or command.startswith("restsync sandbox"):
                continue
            if any(re.fullmatch(pattern, command) for pattern in ELSEWHERE):
                continue  # run by the test ELSEWHERE names (demo and check follow each other)
            out = io.StringIO()
            with redirect_stdout(out):
                assert main(shlex.split(command)[1:]) == 0, command
            printed[command] = out.getvalue()
    finally:
        server.terminate()
        server.wait(timeout=30)
    samples = [
        b.splitlines()
        for page in PAGES
        if page != TUTORIAL
        for lang, b in blocks_of(page)
        if lang == "text"
    ]
    compared = [s for s in samples if s[0][2:] in printed and s[0] != "$ restsync validate"]
    assert len(compared) == 2  # the preview and the run samples
    for sample in compared:
        assert_sample(sample[1:], printed[sample[0][2:]].splitlines(), port)


def normal(line: str, port: str) -> str:
    """A line with what changes between runs blanked: ports, timings, the warehouse path."""
    line = line.replace(f"127.0.0.1:{port}", "127.0.0.1:PORT").replace(
        f"127.0.0.1:{README_PORT}", "127.0.0.1:PORT"
    )
    line = re.sub(r"(warehouse:|checks against duckdb) \S+", r"\1 W", line)
    line = re.sub(r"\b\d+\.\d+s?\b", "T", line)
    line = re.sub(r"(\b200|\b401)\s+\d+\s+", r"\1 MS ", line)  # request milliseconds
    return " ".join(line.split()).replace("-", "")


def assert_sample(sample: list[str], printed: list[str], port: str) -> None:
    """The README's sample output is what the command prints (a `...` line ends the sample)."""
    printed = [p for p in printed if "so far" not in p]
    for index, line in enumerate(sample):
        if line.strip() == "...":
            return
        assert normal(line, port) == normal(printed[index], port), (line, printed[index])
    assert len(printed) == len(sample)


def test_the_validate_sample_is_what_validate_prints(tmp_path, capsys, monkeypatch):
    """The `$ restsync validate` sample: a spec with `paginator.type: cursr` gives that line."""
    (block,) = [b for lang, b in BLOCKS if lang == "text" and b.startswith("$ restsync validate")]
    expected = block.splitlines()[1]
    specs = tmp_path / "source_specs"
    specs.mkdir()
    raw = yaml.safe_load((SEED_SPECS / "ledger.yaml").read_text())
    raw["name"] = "shop"
    raw["resources"][0]["name"] = "orders"
    raw["resources"][0]["endpoint"]["paginator"] = {"type": "cursr"}
    (specs / "shop.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert capsys.readouterr().err.strip() == expected


# --------------------------------------------------------------------------- yaml and toml

GENERIC = {
    "name": "shop",
    "client": {"base_url": "https://api.example.com"},
    "resources": [{"name": "orders", "endpoint": {"path": "/v1/orders"}}],
}
SEEDS = {p.stem: p for p in SEED_SPECS.glob("*.yaml")}


def spec_snippets() -> list[pytest.param]:
    """Every ```yaml block of every page but the defs.yaml, with the page in its id."""
    return [
        pytest.param(body, id=f"{page_id(page)}:{body.splitlines()[0][:40]}")
        for page in PAGES
        for lang, body in blocks_of(page)
        if lang == "yaml" and not body.startswith("# defs/")
    ]


def as_spec(snippet: str) -> dict:
    """The snippet merged into the seed spec it names (`# ledger.yaml`, or `name: ledger`),
    else into a minimal spec: top-level keys at the top, resources by name, resource keys on
    the first resource (endpoint keys in its endpoint)."""
    fragment = yaml.safe_load(snippet)
    named = re.search(r"#\s*(\w+)\.yaml", snippet)
    seed = (
        named.group(1) if named else (fragment.get("name") if isinstance(fragment, dict) else None)
    )
    spec = yaml.safe_load(SEEDS[seed].read_text()) if seed in SEEDS else copy.deepcopy(GENERIC)
    if isinstance(fragment, list):
        fragment = {"resources": fragment}
    first = spec["resources"][0]
    for key, value in fragment.items():
        if key == "resources":
            by_name = {r["name"]: i for i, r in enumerate(spec["resources"])}
            for resource in value:
                if resource["name"] in by_name:
                    spec["resources"][by_name[resource["name"]]] = resource
                else:
                    spec["resources"].append(resource)
        elif key in TOP_LEVEL_KEYS:
            spec[key] = {**spec[key], **value} if isinstance(value, dict) and key in spec else value
        elif key in ENDPOINT_KEYS:
            first.setdefault("endpoint", {})[key] = value
        else:
            first[key] = value
    return spec


@pytest.mark.parametrize("snippet", spec_snippets())
def test_spec_snippet_is_a_valid_spec(snippet, tmp_path):
    spec = parse_spec(as_spec(snippet), tmp_path / "snippet.yaml")
    assert spec.resources


def test_the_defs_yaml_snippet_loads_as_a_component(tmp_path):
    """The README's defs.yaml, verbatim, next to a scaffolded specs/ folder: keys prefixed."""
    from dagster.components.testing import create_defs_folder_sandbox

    from restsync_assets import RestSyncComponent

    (snippet,) = [b for lang, b in BLOCKS if lang == "yaml" and b.startswith("# defs/")]
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(RestSyncComponent, defs_path="shop_api")
        (path / "defs.yaml").write_text(snippet)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            (key,) = defs.resolve_all_asset_keys()
            assert key.path == ["raw", "shop_api", "items"]
            node = defs.resolve_asset_graph().get(key)
            assert (node.group_name, node.owners, node.tags["layer"]) == (
                "shop_api",
                ["team:data-eng"],
                "raw",
            )


def test_the_secrets_toml_snippet_names_credential_keys():
    """The `.dlt/secrets.toml` example names seed specs or sandbox vendors, and only keys
    restsync reads: the OAuth credentials, or a static auth type's default secret."""
    from restsync_assets.sandbox.vendors import VENDORS

    (snippet,) = [b for lang, b in BLOCKS if lang == "toml"]
    sources = tomlkit.parse(snippet).unwrap()["sources"]
    assert set(sources) <= {*SEEDS, *VENDORS}
    static_auth = ("token", "api_key", "username", "password")
    assert all(set(keys) <= {*CREDENTIAL_KEYS, *static_auth} for keys in sources.values())


#: first lines of the sample outputs (```text), each compared by a test with what it shows
SAMPLES = {
    # test_the_walkthrough_runs
    "$ restsync preview ledger resource_name --limit 3",
    "$ restsync run ledger marketing_api/organizations",
    # test_the_validate_sample_is_what_validate_prints
    "$ restsync validate",
    # test_the_tutorial_runs
    "$ restsync preview marketing_api organizations --pages 3 --limit 3",
    "$ restsync run marketing_api",
    "$ restsync check",
    # test_soft_deletes.py::test_restsync_validate_prints_the_readme_line
    "source_specs/marketing_api.yaml: resource 'organizations': deletes: rows a run"
    " does not read would be marked deleted: the resource is read incrementally"
    " (only new and changed rows)",
    # test_response_rules.py::test_a_fail_rule_fails_the_run_with_the_apis_message
    "chat: resource messages: GET http://127.0.0.1:8000/chat/v1/messages?limit=10&oldest="
    "yesterday failed after 1 attempt: HTTP 200 OK matching error_handler.response_rules[2]"
    " (action fail): invalid_ts_oldest; the API says the request failed: fix what it names,"
    " or change the rule's action (retry, ignore)",
    # test_specs.py::test_restsync_validate_names_file_key_secret_form_and_env_var
    "source_specs/gh.yaml: client.headers.Authorization: secrets never live in YAML:"
    " write {secret: authorization} and set GH_AUTHORIZATION (or"
    " sources.gh.authorization in .dlt/secrets.toml)",
}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_example_block_is_checked(page):
    """Each fenced block of the page is a command block, a sample output, a spec, a defs.yaml
    or the toml above (the layout tree, with no language, is not an example)."""
    checked = {"bash", "yaml", "toml"}
    for language, body in blocks_of(page):
        if language == "text":
            first = body.splitlines()[0]
            assert first in SAMPLES, first
        else:
            assert language in checked or (language == "" and "restsync_assets/" in body), body[:60]


# --------------------------------------------------------------------------- the tutorial


def tutorial_steps() -> list[tuple[str, ...]]:
    """docs/tutorial.md in order: ("file", path, body) for a ```yaml block after
    `<!-- tutorial:file PATH -->`, ("command", line) per bash line, ("sample", body)."""
    steps: list[tuple[str, ...]] = []
    marked = re.compile(r"(?:<!-- tutorial:file (\S+) -->\n)?" + FENCE.pattern, FENCE.flags)
    for path, language, body in marked.findall(TUTORIAL.read_text()):
        if path:
            steps.append(("file", path, body))
        elif language == "bash":
            steps.extend(("command", line) for line in _bash_lines([(language, body)]))
        elif language == "text":
            steps.append(("sample", body))
    return steps


def run_tutorial_command(command: str, sandbox, monkeypatch) -> str | None:
    """One tutorial command, as `TUTORIAL_COMMANDS` lists them; a `restsync` command runs in
    this process and must exit 0 (its output is returned). The sandbox is the `sandbox`
    fixture (the server `restsync sandbox` runs, on a free port; the walkthrough proves the
    `eval` line exports what `Sandbox.env()` gives), and `dagster dev` is the definitions
    module it loads (test_readme_commands.py serves it)."""
    words = shlex.split(command)
    if command.startswith("restsync sandbox --port"):
        assert sandbox.port
    elif command.startswith("eval "):
        for key, value in sandbox.env().items():
            monkeypatch.setenv(key, value)
    elif words[0] == "export":
        name, _, value = words[1].partition("=")
        monkeypatch.setenv(name, value)
    elif words[:2] == ["mkdir", "-p"]:
        Path(words[2]).mkdir(parents=True, exist_ok=True)
    elif words[0] == "restsync":
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(words[1:]) == 0, command
        return out.getvalue()
    else:
        assert command == "dagster dev", command
        from restsync_assets.definitions import build_definitions
        from restsync_assets.settings import specs_dir
        from restsync_assets.specs import load_specs

        defs = build_definitions(load_specs(specs_dir()))
        schedule = defs.resolve_schedule_def("marketing_api_schedule")
        assert schedule.cron_schedule == "0 */4 * * *"
        keys = {key.path[-1] for key in defs.resolve_all_asset_keys()}
        assert keys == {"organizations", "adaccounts"}
    return None


def test_the_tutorial_runs(sandbox, tmp_path, monkeypatch):
    """docs/tutorial.md followed in a fresh folder: each file written as the page shows it
    when the page shows it, each command run in order (every `restsync` command exits 0),
    each sample output what the command before it printed, and `dagster dev`'s definitions
    hold the two assets and the schedule the page promises."""
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "RESTSYNC_SPECS_DIR", "RESTSYNC_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RESTSYNC_PIPELINES_DIR", raising=False)
    monkeypatch.delenv("RESTSYNC_DESTINATION", raising=False)
    printed: dict[str, str] = {}
    steps = tutorial_steps()
    assert [s[0] for s in steps].count("file") == 3
    for kind, *rest in steps:
        if kind == "file":
            path, body = rest
            (tmp_path / path).write_text(body)
        elif kind == "command":
            output = run_tutorial_command(rest[0], sandbox, monkeypatch)
            if output is not None:
                printed[rest[0]] = output
        else:
            sample = rest[0].splitlines()
            assert_sample(sample[1:], printed[sample[0][2:]].splitlines(), str(sandbox.port))
    assert printed.keys() >= {
        "restsync run marketing_api",
        "restsync check",
        "restsync preview marketing_api adaccounts --limit 3",
    }


# --------------------------------------------------------------------------- links and the site


def test_the_readme_links_name_docs_pages_and_headings_that_exist():
    """Every relative link of the README names a file of the repo, and a `#heading` of a
    docs page that the page has (as MkDocs slugs it); mkdocs does not build the README."""
    links = re.findall(r"\]\(([^)#]+\.md)(?:#([^)]+))?\)", (REPO / "README.md").read_text())
    assert len(links) >= 7
    for target, anchor in links:
        if target.startswith("http"):
            continue
        page = REPO / target
        assert page.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE)
            assert anchor in {slugify(h, "-") for h in headings}, f"{target}#{anchor}"


def test_mkdocs_build_strict_passes(tmp_path):
    """`mkdocs build --strict` (as CI runs it) builds the site: no broken link or anchor, no
    page left out of the nav."""
    build = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert (tmp_path / "site" / "tutorial" / "index.html").is_file()
