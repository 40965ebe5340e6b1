"""The asset graph built from the seed specs: keys, deps, groups, kinds (snapshot), what
loading the definitions does not do (no secrets needed, no network, no dlt source, no run
time), and the import graph of `restsync_assets` (which part may import which; no circle)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from restsync_assets.check_kinds import CHECK_KINDS

from .snapshots import ASSET_GRAPH, seed_asset_graph
from .support import REPO, SEED_SPECS, use_specs


def test_asset_graph_matches_snapshot():
    """The seed specs' asset graph equals `snapshots/asset_graph.json` (regenerated only by
    hand: `python -m restsync_assets_tests.snapshots`)."""
    assert seed_asset_graph() == json.loads(ASSET_GRAPH.read_text())


def test_twenty_assets_grouped_by_spec_with_parent_edges():
    """20 assets, each in its spec's group, and exactly the parent -> child edges of the seeds."""
    graph = seed_asset_graph()["assets"]
    assert len(graph) == 20
    assert all(key.split("/")[0] == node["group"] for key, node in graph.items())
    edges = {(dep, key) for key, node in graph.items() for dep in node["deps"]}
    assert edges == {
        ("marketing_api/organizations", "marketing_api/adaccounts"),
        ("marketing_api/adaccounts", "marketing_api/creatives"),
        ("marketing_api/adaccounts", "marketing_api/ads"),
        ("native_ads/accounts", "native_ads/audiences"),
        ("native_ads/accounts", "native_ads/campaigns"),
        ("native_ads/accounts", "native_ads/audience_rules"),
        ("native_ads/accounts", "native_ads/conversion_rules"),
        ("native_ads/campaigns", "native_ads/motion_ads"),
        ("native_ads/campaigns", "native_ads/campaign_items"),
    }


#: Imports `restsync_assets.definitions` in a fresh process where every socket connect or
#: name lookup is refused and recorded, and every dlt source or pipeline built is recorded;
#: prints what happened as JSON.
LOAD_DEFINITIONS = """
import json, socket, sys

attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args))
    raise OSError("no network while loading definitions")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse

from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

built = []

def recording(cls):
    original = cls.__init__

    def init(self, *args, **kwargs):
        built.append(cls.__name__)
        original(self, *args, **kwargs)

    cls.__init__ = init

recording(DltSource)
recording(Pipeline)

import restsync_assets.definitions as definitions

print(json.dumps({
    "assets": len(list(definitions.defs.resolve_all_asset_keys())),
    "network": attempts,
    "built": built,
    "runtime": sorted(m for m in sys.modules if m.startswith("restsync_assets.runtime")),
}))
"""


def test_definitions_module_loads_without_secrets_or_network(commands, monkeypatch):
    """`restsync_assets.definitions` loads all 20 assets in a fresh process with no secret
    set, without one socket connect or name lookup, without building a dlt source or
    pipeline, and without importing any of the run time (`restsync_assets.runtime`; the
    template compiler spec validation uses is `restsync_assets.specs.templates`)."""
    for key in list(os.environ):
        if key.endswith(("_CLIENT_ID", "_CLIENT_SECRET", "_REFRESH_TOKEN", "_TOKEN", "_API_KEY")):
            monkeypatch.delenv(key)
    use_specs(monkeypatch, SEED_SPECS)
    load = commands([sys.executable, "-c", LOAD_DEFINITIONS])
    assert load.finish() == 0, load.text
    loaded = json.loads(load.text.strip().splitlines()[-1])
    assert loaded["assets"] == 20
    assert loaded["network"] == []
    assert loaded["built"] == []
    assert loaded["runtime"] == [], loaded["runtime"]


# --------------------------------------------------------------------------- the import graph

PACKAGE = REPO / "restsync_assets"

#: Every top-level module and package of `restsync_assets`, by the part it belongs to.
PARTS = {
    "definition time": {
        "assets",
        "checks",
        "schedules",
        "partitions",
        "metadata",
        "definitions",
        "dg_definitions",
        "component",
        "executors",
        "spec_problems",
        "defs",
    },
    # beside both halves: either may import them, they import neither (nor the command line)
    "shared": {
        "__init__",
        "errors",
        "keys",
        "check_kinds",
        "resources",
        "settings",
        "text",
        "specs",
        "sandbox",
    },
    "run time": {"runtime"},
    # `importers`: other tools' connectors into specs, run only by `restsync import`
    "command line": {"cli", "importers"},
}

#: The parts each part may import. Definition time imports run time only deferred (inside a
#: function, e.g. the asset body calling `runtime.load`, or under `if TYPE_CHECKING:`).
MAY_IMPORT = {
    "shared": {"shared"},
    "run time": {"shared", "run time"},
    "definition time": {"shared", "definition time"},
    "command line": set(PARTS),
}
MAY_IMPORT_DEFERRED = {**MAY_IMPORT, "definition time": {"shared", "definition time", "run time"}}


@dataclass(frozen=True)
class Import:
    """One import of a `restsync_assets` module by another."""

    source: str
    target: str
    line: int
    #: inside a function or under `if TYPE_CHECKING:`: not run when `source` is imported
    deferred: bool

    def __str__(self) -> str:
        when = " (deferred)" if self.deferred else ""
        return f"{self.source}:{self.line} imports {self.target}{when}"


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(modules: dict[str, Path]) -> list[Import]:
    """Every import, at any level, of one `restsync_assets` module by another."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]

        def visit(node: ast.AST, deferred: bool, module: str = module, package: str = package):
            if isinstance(node, ast.Import):
                targets = [resolve(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else resolve(base)
                    for a in node.names
                ]
            else:
                targets = []
            for target in targets:
                if target and target != module:
                    found.append(Import(module, target, node.lineno, deferred))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                deferred = True
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.body:
                    visit(child, True)
                for child in node.orelse:
                    visit(child, deferred)
                return
            for child in ast.iter_child_nodes(node):
                visit(child, deferred)

        visit(ast.parse(path.read_text(), str(path)), False)
    return found


def _part(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    return next((part for part, names in PARTS.items() if top in names), f"unknown ({top})")


def test_top_level_holds_only_definitions_and_shared_modules():
    """Each top-level module or package of `restsync_assets` is in one part of `PARTS`; the
    command line and the run time are packages of their own (no CLI module at the top)."""
    top = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()}
    top = {name for name in top if not name.startswith((".", "__pycache__")) and name != "py.typed"}
    listed = set().union(*PARTS.values())
    assert top == listed, f"unlisted: {sorted(top - listed)}; gone: {sorted(listed - top)}"
    for name in PARTS["command line"] | PARTS["run time"]:
        assert (PACKAGE / name / "__init__.py").is_file(), name


def test_each_part_imports_only_the_parts_below_it():
    """Run time imports no definition-time or command-line module, not even inside a function
    (`runtime.catalog` once imported `asset_key` from `assets`); shared modules import neither
    half; definition time imports run time only deferred, never the command line."""
    wrong = {
        str(i)
        for i in _imports(_modules())
        if _part(i.target)
        not in (MAY_IMPORT_DEFERRED if i.deferred else MAY_IMPORT).get(_part(i.source), set())
    }
    assert sorted(wrong) == []


def test_no_import_circle_at_import_time():
    """No circle of module-level imports inside `restsync_assets` (imports inside functions and
    under `if TYPE_CHECKING:` are not run at import time, so they cannot make one; those from
    run time back to definition time are refused above)."""
    graph: dict[str, set[str]] = {}
    for i in _imports(_modules()):
        if not i.deferred:
            graph.setdefault(i.source, set()).add(i.target)
    done: set[str] = set()

    def circle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            if found := circle_from(target, [*path, module]):
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        assert circle_from(module, []) is None, " -> ".join(circle_from(module, []) or [])


def test_no_two_modules_import_each_other_even_deferred():
    """Two modules never import each other, not even one of them inside a function (as
    `rate_limit` did `rate_limit_redis`, which imported `rate_limit` back, and `token_store`
    `token_store_redis`): what both need lives in a third module (`rate_budget`,
    `token_backend`)."""
    edges = {(i.source, i.target) for i in _imports(_modules())}
    both_ways = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert both_ways == []


#: The modules of `specs` that run time may import: the model it reads and the helpers the
#: model's values need at run time (templates and their functions, JSONPath selectors, token
#: URLs). The stages that build the model (files, defaults, bindings, `validate/`, errors) are
#: definition time's.
SPECS_FOR_RUN_TIME = ("model", "templates", "template_functions", "selectors", "token_urls")


def test_run_time_reads_the_spec_model_not_the_stages_that_build_it():
    """Run time imports from `specs` only the model and the helpers its values need
    (`runtime.transforms` once imported `is_template` from `specs.validate.transforms`)."""
    wrong = sorted(
        str(i)
        for i in _imports(_modules())
        if i.source.startswith("restsync_assets.runtime")
        and i.target.startswith("restsync_assets.specs")
        and i.target.split(".")[2:3] not in ([name] for name in SPECS_FOR_RUN_TIME)
    )
    assert wrong == []


@pytest.mark.parametrize("kind", CHECK_KINDS, ids=lambda kind: kind.name)
def test_every_check_kind_names_its_run_time_evaluator(kind):
    """The one table of check kinds names, for each kind, a function of
    `restsync_assets.runtime.checks` (named, not imported: definition time reads the table);
    a kind whose evaluator is missing fails here, not when its check first runs."""
    evaluators = importlib.import_module("restsync_assets.runtime.checks")
    assert callable(getattr(evaluators, kind.evaluator, None)), kind.evaluator
