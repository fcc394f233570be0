"""Kept so that imports of ``bpflink.opts.iter`` work: the code is in ``bpflink.families.iter``."""

from ..families.iter import CgroupIterOrder, Iter

__all__ = ["CgroupIterOrder", "Iter"]
