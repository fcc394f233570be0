"""Import the compiled extension and check it was built for this package and these headers.

A stale extension (built from another version) or a layout cffi computed differently from the C compiler
would corrupt syscalls silently; both are an ImportError here instead.
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of `import bpflink` (bench/)
if TYPE_CHECKING:
    from typing import Any

try:
    from ._ffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        f"bpflink's compiled extension is missing ({exc}). Build it: `pip install -e .` in a checkout "
        "(scripts/setup does everything), or install a bpflink wheel."
    ) from exc

_built = ffi.string(lib.bpflink_build_version).decode()
if _built != __version__:  # pragma: no cover
    raise ImportError(
        f"bpflink._ffi was built for bpflink {_built} but this is bpflink {__version__}: "
        "rebuild it (`pip install -e .`)."
    )


def _check_layouts() -> None:
    for i in range(lib.bpflink_layout_count):
        entry = lib.bpflink_layout_table[i]
        ctype = ffi.string(entry.type).decode()
        member = ffi.string(entry.member).decode()
        path = member.split(".")
        offset = ffi.offsetof(ctype, *path)
        size = ffi.sizeof(_member_type(ctype, path))
        if (offset, size) != (entry.offset, entry.size):  # pragma: no cover
            raise ImportError(
                f"bpflink: {ctype}.{member} is at {offset} (size {size}) for cffi but at {entry.offset} "
                f"(size {entry.size}) for the C compiler; include/*.h disagrees with the headers"
            )


def _member_type(ctype: str, path: list[str]) -> Any:
    tp = ffi.typeof(ctype)
    for name in path:
        tp = dict(tp.fields)[name].type
    return tp


_check_layouts()

__all__ = ["ffi", "lib"]
