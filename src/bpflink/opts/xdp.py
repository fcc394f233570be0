"""Kept so that imports of ``bpflink.opts.xdp`` work: the code is in ``bpflink.families.xdp``."""

from ..families.xdp import Xdp

__all__ = ["Xdp"]
