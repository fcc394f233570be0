"""Kept so that imports of ``bpflink.opts._base`` work: the code is in ``bpflink.families._base``."""

from ..families._base import BuiltOpts, LinkOpts

__all__ = ["BuiltOpts", "LinkOpts"]
