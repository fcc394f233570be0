"""Every docstring example in src/bpflink runs (those needing a kernel object are marked ``+SKIP``)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bpflink

MODULES = sorted(m.name for m in pkgutil.walk_packages(bpflink.__path__, "bpflink.")
                 if m.name != "bpflink.__main__")  # importing __main__ runs the CLI


@pytest.mark.hostonly
@pytest.mark.parametrize("name", ["bpflink", *MODULES])
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"


def test_doctests_are_collected() -> None:
    """The modules with examples are the ones bpflink's API documents: the count cannot silently drop to 0."""
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for name in MODULES
                   for t in finder.find(importlib.import_module(name)))
    assert examples >= 40, examples
