"""libbpf's print callback routed to Python ``logging``: logger ``bpflink.libbpf``.

libbpf's levels map to WARNING, INFO and DEBUG. Enabled when bpflink is imported; configure it like any logger:

>>> import logging
>>> logging.getLogger("bpflink.libbpf").setLevel(logging.WARNING)
"""

from __future__ import annotations

import logging

from ._native import ffi, lib

logger = logging.getLogger("bpflink.libbpf")

_LEVELS = {
    int(getattr(lib, "LIBBPF_WARN", 0)): logging.WARNING,
    int(getattr(lib, "LIBBPF_INFO", 1)): logging.INFO,
    int(getattr(lib, "LIBBPF_DEBUG", 2)): logging.DEBUG,
}


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _bpflink_on_libbpf_print(level: int, msg: object) -> None:
    # called from C inside libbpf calls: never let an exception escape into C
    try:
        pylevel = _LEVELS.get(level, logging.DEBUG)
        if logger.isEnabledFor(pylevel):
            logger.log(pylevel, "%s", ffi.string(msg).decode(errors="replace").rstrip("\n"))
    except Exception:  # pragma: no cover - logging itself failed
        pass


def route_libbpf_print(enable: bool = True) -> None:
    """Send libbpf's messages to the ``bpflink.libbpf`` logger; with False libbpf prints nothing at all."""
    lib.bpflink_route_libbpf_print(1 if enable else 0)


route_libbpf_print(True)

__all__ = ["logger", "route_libbpf_print"]
