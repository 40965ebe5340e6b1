"""One error base: every restsync exception is a `RestsyncError` with a `kind`, and the run's
failure line (`runtime.failures.explain`) tells restsync's errors from others by that base,
not by the module that raised them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import restsync_assets
from restsync_assets.errors import ERROR_KINDS, RestsyncError
from restsync_assets.runtime.failures import explain

#: Packages whose exceptions are not restsync's: the sandbox is the fake API the tests and
#: the demo talk to (its errors are HTTP answers, never a line a user of restsync reads).
NOT_RESTSYNC = ("restsync_assets.sandbox",)


def restsync_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a module of `restsync_assets` (all imported)."""
    found = {}
    for info in pkgutil.walk_packages(restsync_assets.__path__, "restsync_assets."):
        if info.name.startswith(NOT_RESTSYNC) or info.name.endswith(".__main__"):
            continue  # `__main__` runs the command line when imported
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


def test_every_restsync_exception_is_a_restsync_error_with_a_kind() -> None:
    """No restsync exception class outside the one base (19 classes had none in common)."""
    classes = restsync_exception_classes()
    assert len(classes) > 20
    outside = [c.__qualname__ for c in classes if not issubclass(c, RestsyncError)]
    assert outside == []
    unknown = {c.__qualname__: c.kind for c in classes if c.kind not in ERROR_KINDS}
    assert unknown == {}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("restsync_assets.specs.errors.SpecError", "config"),
        ("restsync_assets.specs.errors.SpecValidationError", "config"),
        ("restsync_assets.resources.MissingCredentialError", "auth"),
        ("restsync_assets.runtime.http.errors.OAuth2Error", "auth"),
        ("restsync_assets.runtime.token_store.TokenStoreError", "auth"),
        ("restsync_assets.runtime.http.errors.HttpStatusError", "api"),
        ("restsync_assets.runtime.http.errors.RequestFailedError", "api"),
        ("restsync_assets.runtime.warehouse.WarehouseError", "warehouse"),
        ("restsync_assets.runtime.dataset_lock.LockLost", "warehouse"),
        ("restsync_assets.runtime.transforms.TransformError", "data"),
        ("restsync_assets.runtime.child_cursors.CursorError", "data"),
        ("restsync_assets.importers.airbyte.errors.ImportFailed", "config"),
        ("restsync_assets.importers.airbyte.errors.Unsupported", "config"),
    ],
)
def test_each_error_says_what_it_is_about(name, kind) -> None:
    """The `kind` tells where the user looks: the spec or settings, credentials, the API,
    the warehouse, or the rows."""
    module, _, attribute = name.rpartition(".")
    error_class = getattr(importlib.import_module(module), attribute)
    assert issubclass(error_class, RestsyncError)
    assert error_class.kind == kind


def test_the_error_base_imports_neither_dagster_nor_dlt() -> None:
    """Both halves (and the command line) import `restsync_assets.errors`: it pulls in no
    Dagster and no dlt."""
    code = (
        "import sys, restsync_assets.errors;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'dlt', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_error_is_restsyncs_by_its_base_not_its_module() -> None:
    """A `RestsyncError` raised from any module is quoted as its own line; an error that is
    not one is quoted with its type, even when a `restsync_assets` module defines it (the
    line used to depend on the module's name)."""
    plugin_error = type("PluginError", (RestsyncError,), {"__module__": "vendor_plugin"})
    foreign = type("Foreign", (ValueError,), {"__module__": "restsync_assets.runtime.x"})
    assert explain(plugin_error("resource orders: cursor missing"), "shop") == (
        "shop: resource orders: cursor missing"
    )
    assert explain(foreign("bad value"), "shop") == "shop: Foreign: bad value"


def test_the_deepest_restsync_error_in_a_chain_names_the_failure() -> None:
    """dlt wraps a step's error several times: the line is the deepest restsync error's."""
    from restsync_assets.runtime.http.errors import PaginationLoopError

    try:
        try:
            raise PaginationLoopError("resource orders: the API repeated cursor 'c2'")
        except PaginationLoopError as inner:
            raise RuntimeError("Pipeline execution failed at stage extract") from inner
    except RuntimeError as outer:
        line = explain(outer, "shop")
    assert line == "shop: resource orders: the API repeated cursor 'c2'"
