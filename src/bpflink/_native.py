"""Import the compiled extension, check it was built for this package and these headers, and say which names
the headers lacked.

A stale extension (built from another version) or a layout cffi computed differently from the C compiler
would corrupt syscalls silently; both are an ImportError here instead.

Names the compiled headers may lack (a struct member, a function, a constant; marked ``/*@if NAME*/`` or
``#define NAME ...`` in include/*.h) are decided once, at build time, by build_ffi.py's presence probe; the
extension carries the answer and the reason. ``has(name)`` is the one way to ask, in Python as in C
(``BPFLINK_HAS_<name>``); ``require(name, feature)`` raises ``NotSupportedError`` naming what is missing:

>>> has("BPF_F_REPLACE")
True
>>> has("struct bpf_link_info.no_such_member")
Traceback (most recent call last):
...
KeyError: "'struct bpf_link_info.no_such_member' is not a conditional name of include/*.h"
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
    fields: dict[Any, dict[str, Any]] = {}  # a type's fields, built once: cffi rebuilds the list per access
    for i in range(lib.bpflink_layout_count):
        entry = lib.bpflink_layout_table[i]
        ctype = ffi.string(entry.type).decode()
        member = ffi.string(entry.member).decode()
        tp = ffi.typeof(ctype)
        offset = 0
        for name in member.split("."):
            if tp not in fields:
                fields[tp] = dict(tp.fields)
            field = fields[tp][name]
            offset += field.offset
            tp = field.type
        size = ffi.sizeof(tp)
        if (offset, size) != (entry.offset, entry.size):  # pragma: no cover
            raise ImportError(
                f"bpflink: {ctype}.{member} is at {offset} (size {size}) for cffi but at {entry.offset} "
                f"(size {entry.size}) for the C compiler; include/*.h disagrees with the headers"
            )


_check_layouts()


def _conditional() -> dict[str, str]:
    out = {}
    for line in ffi.string(lib.bpflink_conditional).decode().splitlines():
        name, _, reason = line.partition("\t")
        out[name] = reason
    return out


# name -> "" when the headers had it, else why not ("<header> (<package>) has no member x in struct y")
CONDITIONAL: dict[str, str] = _conditional()
ABSENT: frozenset[str] = frozenset(name for name, reason in CONDITIONAL.items() if reason)


def has(name: str) -> bool:
    """Whether the compiled headers had ``name`` (a name include/*.h marks as conditional; KeyError otherwise, so
    a typo is not mistaken for an absent name)."""
    try:
        return not CONDITIONAL[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a conditional name of include/*.h") from None


def missing(name: str) -> str | None:
    """Why ``name`` is absent (the header and package that lack it), or None when the headers had it."""
    has(name)
    return CONDITIONAL[name] or None


def require(name: str, feature: str, *, min_kernel: str | None = None) -> None:
    """Raise ``NotSupportedError(feature)`` naming the header that lacked ``name``; nothing when it was there."""
    reason = missing(name)
    if reason is not None:
        from .errors import NotSupportedError

        raise NotSupportedError(feature, f"bpflink was compiled against headers without {name}: {reason}",
                                min_kernel=min_kernel)


class Absent:
    """What a constant the headers lacked is bound to: any use as a number (int(), a bit operation, a cffi field
    assignment) raises ``NotSupportedError`` naming the header. In an enum class body it stays a plain attribute,
    not a member (it is a descriptor), so it cannot alias a real member the way a placeholder 0 would."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: object = None) -> Absent:
        return self

    def _refuse(self, *_: object) -> Any:
        from .errors import NotSupportedError

        reason = CONDITIONAL.get(self.name) or f"the compiled headers do not define {self.name}"
        raise NotSupportedError(self.name, f"bpflink was compiled against headers without {self.name}: {reason}")

    __int__ = __index__ = __invert__ = __neg__ = _refuse
    __or__ = __ror__ = __and__ = __rand__ = __xor__ = __rxor__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<absent {self.name}>"


def constant(name: str) -> int:
    """The value of C constant ``name`` (a ``#define``, an enumerator); an ``Absent`` that refuses every use
    when the headers lacked it (typed ``int``: callers that may meet one ask ``has(name)`` first)."""
    value = getattr(lib, name, None)
    if value is None:
        absent: Any = Absent(name)
        return absent  # type: ignore[no-any-return]
    return int(value)


__all__ = ["ABSENT", "CONDITIONAL", "Absent", "constant", "ffi", "has", "lib", "missing", "require"]
