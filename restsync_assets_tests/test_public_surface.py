"""`restsync_assets`'s public surface: every name resolves, importing the package is cheap,
and no module writes the process environment."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import restsync_assets

from .support import PROCESS_TIMEOUT, REPO


def test_every_public_name_resolves_to_its_object():
    """`__all__` lists the surface; each name is the object its home module defines."""
    from restsync_assets.definitions import build_definitions
    from restsync_assets.resources import ApiCredentials
    from restsync_assets.specs import load_specs
    from restsync_assets.specs.model import SourceSpec

    assert {"build_definitions", "load_specs", "SourceSpec", "ApiCredentials"} <= set(
        restsync_assets.__all__
    )
    assert [n for n in restsync_assets.__all__ if getattr(restsync_assets, n, None) is None] == []
    assert restsync_assets.build_definitions is build_definitions
    assert restsync_assets.load_specs is load_specs
    assert restsync_assets.SourceSpec is SourceSpec
    assert restsync_assets.ApiCredentials is ApiCredentials


def test_importing_the_package_loads_no_dependency_and_no_run_time_code():
    """A fresh `import restsync_assets` imports neither Dagster, dlt nor pydantic, nor
    anything of `restsync_assets.runtime`: names are imported on first use."""
    heavy = ("dagster", "dlt", "pydantic", "yaml", "restsync_assets.")
    code = (
        "import sys, restsync_assets; "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert out.stdout.strip() == "[]", out.stdout


#: Methods of `os.environ` that change it
ENVIRON_WRITERS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__"})


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`, or `environ` imported from `os`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def environ_writes(source: str) -> list[int]:
    """The lines of `source` writing the process environment: an item of `os.environ`
    assigned or deleted, a method changing it called, `os.putenv`/`os.unsetenv` called."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            writes = func.attr in ENVIRON_WRITERS and _is_environ(func.value)
            calls_os = isinstance(func.value, ast.Name) and func.value.id == "os"
            if writes or (calls_os and func.attr in ("putenv", "unsetenv")):
                lines.append(node.lineno)
    return lines


ENVIRON_CASES = [
    ("os.environ['A'] = '1'", [1]),
    ("os.environ['A'] += '1'", [1]),
    ("del os.environ['A']", [1]),
    ("os.environ.update({'A': '1'})", [1]),
    ("os.environ.setdefault('A', '1')", [1]),
    ("os.environ.pop('A', None)", [1]),
    ("os.putenv('A', '1')", [1]),
    ("from os import environ\nenviron['A'] = '1'", [2]),
    ("x = os.environ.get('A')\nenv = {**os.environ, 'A': '1'}\nenv['A'] = '2'", []),
]


@pytest.mark.parametrize(("source", "lines"), ENVIRON_CASES)
def test_environ_writes_finds_each_way_to_write_the_environment(source, lines):
    """The detector below sees every way of writing the environment, and not reading it or
    writing a copy."""
    assert environ_writes(source) == lines


def test_no_module_writes_the_process_environment():
    """No module of `restsync_assets` writes `os.environ` (nor calls `os.putenv`): settings are
    handed to subprocesses in an env mapping or passed inward in code (house rules)."""
    package = REPO / "restsync_assets"
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted(package.rglob("*.py"))
        for line in environ_writes(path.read_text(encoding="utf-8"))
    ]
    assert found == []
