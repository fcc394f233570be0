"""Kept so that imports of ``bpflink.opts.tracing`` work: the code is in ``bpflink.families.tracing``."""

from ..families.tracing import Tracing

__all__ = ["Tracing"]
