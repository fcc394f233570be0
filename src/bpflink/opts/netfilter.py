"""Kept so that imports of ``bpflink.opts.netfilter`` work: the code is in ``bpflink.families.netfilter``."""

from ..families.netfilter import Netfilter

__all__ = ["Netfilter"]
