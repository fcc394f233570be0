"""Kept so that imports of ``bpflink.opts.uprobe_multi`` work: the code is in ``bpflink.families.uprobe_multi``."""

from ..families.uprobe_multi import UprobeMulti

__all__ = ["UprobeMulti"]
