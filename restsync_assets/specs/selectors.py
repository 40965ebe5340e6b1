"""JSONPath in dlt's dialect: `data_selector`s, compiled once (used at definition and run time)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _jsonpath_parser() -> Any:
    """dlt's JSONPath dialect (jsonpath-ng's extended parser), built once: building one takes ~40 ms."""
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

    return ExtendedJsonPathParser()


@lru_cache(maxsize=4096)
def compile_jsonpath(path: str) -> Any:
    """A JSONPath in dlt's dialect, parsed once per distinct path."""
    return _jsonpath_parser().parse(path)


def normalize_selector(selector: str) -> str:
    """Give `*` its RFC 9535 meaning (array elements and object members) under jsonpath-ng.

    Before jsonpath-ng 1.16, `a.*.b` only walked object members, so
    `organizations.*.organization` found nothing in `{"organizations": [{"organization":
    {...}}]}`; there we select both ways. Newer jsonpath-ng already walks both.
    """
    if ".*" not in selector or _star_walks_arrays():
        return selector
    as_array = re.sub(r"\.\*(?=\.|$)", "[*]", selector)
    return f"({as_array}) | ({selector})"


@lru_cache(maxsize=1)
def _star_walks_arrays() -> bool:
    """Whether the installed jsonpath-ng's `.*` selects array elements (probed once)."""
    return [m.value for m in compile_jsonpath("a.*").find({"a": [1]})] == [1]
