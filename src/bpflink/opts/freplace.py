"""Kept so that imports of ``bpflink.opts.freplace`` work: the code is in ``bpflink.families.freplace``."""

from ..families.freplace import Freplace, function_btf_id

__all__ = ["Freplace", "function_btf_id"]
