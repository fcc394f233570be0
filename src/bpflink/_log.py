"""libbpf's print callback routed to Python ``logging``: logger ``bpflink.libbpf``.

libbpf's levels map to WARNING, INFO and DEBUG. Enabled when bpflink is imported; configure it like any logger:

>>> import logging
>>> logging.getLogger("bpflink.libbpf").setLevel(logging.WARNING)
"""

from __future__ import annotations

from . import lowlevel as ll
from ._native import ffi

# logging is imported by the first message, not by `import bpflink` (import time: bench/README.md);
# the values are logging.WARNING, INFO and DEBUG, fixed by the logging module's documentation
_LEVELS = {
    ll.LIBBPF_WARN: 30,
    ll.LIBBPF_INFO: 20,
    ll.LIBBPF_DEBUG: 10,
}
_LOGGER = "bpflink.libbpf"


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _bpflink_on_libbpf_print(level: int, msg: object) -> None:
    # called from C inside libbpf calls: never let an exception escape into C
    try:
        import logging

        logger = logging.getLogger(_LOGGER)
        pylevel = _LEVELS.get(level, logging.DEBUG)
        if logger.isEnabledFor(pylevel):
            logger.log(pylevel, "%s", ffi.string(msg).decode(errors="replace").rstrip("\n"))
    except Exception:  # pragma: no cover - logging itself failed
        pass


def route_libbpf_print(enable: bool = True) -> None:
    """Send libbpf's messages to the ``bpflink.libbpf`` logger; with False libbpf prints nothing at all."""
    ll.bpflink_route_libbpf_print(1 if enable else 0)


route_libbpf_print(True)

__all__ = ["route_libbpf_print"]
