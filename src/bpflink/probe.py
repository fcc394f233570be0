"""``bpflink.probe``: the probing API (``bpflink.probing``) under its first name; calling the module runs
``probe()``, so ``bpflink.probe()`` and ``bpflink.probe.supports`` both work.

>>> import bpflink.probe
>>> bpflink.probe.supports is bpflink.supports
True
"""

from __future__ import annotations

from ._callable import make_callable
from .probing import (
    PROBE_PROG_NAME,  # noqa: F401  (bpflink.probe.PROBE_PROG_NAME stays importable)
    ProbeResult,
    feature_of,
    not_supported_error,
    probe,
    probe_attach_type,
    probeable,
    supports,
)

make_callable(__name__)

__all__ = ["ProbeResult", "feature_of", "not_supported_error", "probe", "probe_attach_type",
           "probeable", "supports"]
