"""Kept so that imports of ``bpflink.opts.kprobe_multi`` work: the code is in ``bpflink.families.kprobe_multi``."""

from ..families.kprobe_multi import KprobeMulti

__all__ = ["KprobeMulti"]
