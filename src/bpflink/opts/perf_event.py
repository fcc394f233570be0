"""Kept so that imports of ``bpflink.opts.perf_event`` work: the code is in ``bpflink.families.perf_event``."""

from ..families.perf_event import PerfEvent

__all__ = ["PerfEvent"]
