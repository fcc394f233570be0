"""Modules that are also their namesake function: ``bpflink.probe``, ``bpflink.query`` and ``bpflink.owners``.

The import system binds a submodule as an attribute of its package whenever it loads it, so a package
attribute ``probe`` cannot stay a plain function once ``bpflink.probe`` is imported. The module itself is made
callable instead: ``bpflink.probe(...)`` calls its function ``probe(...)``, while ``import bpflink.probe``,
``bpflink.probe.supports`` and ``from bpflink.probe import probe`` keep working, whichever runs first.

>>> import inspect, bpflink.query
>>> bpflink.query.query is not bpflink.query and callable(bpflink.query)
True
>>> list(inspect.signature(bpflink.query).parameters)
['target', 'attach_type']
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class CallableModule(ModuleType):
    """A module whose call is the call of its function of the same name (``bpflink.query(...)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__[self.__name__.rpartition(".")[2]](*args, **kwargs)

    @property
    def __signature__(self) -> Any:  # inspect.signature(bpflink.query): the function's
        import inspect

        return inspect.signature(self.__dict__[self.__name__.rpartition(".")[2]])


def make_callable(name: str) -> None:
    """Make the loaded module ``name`` callable as its function of the same name."""
    sys.modules[name].__class__ = CallableModule


__all__ = ["CallableModule", "make_callable"]
