"""What the multi-probe builders share: the session/multi mode check and a short repr of large arrays."""

from __future__ import annotations

from typing import Any

from .._native import ffi
from ..enums import AttachType

_SHOWN = 4


def check_mode(builder: Any, attach_type: AttachType, multi: str, session: str) -> None:
    """The attach type picks multi or session mode; ``builder.session`` (True/False) must agree with it.

    ``TypeError`` naming the builder and the attach type when they disagree; ``ValueError`` for
    ``retprobe=True`` with a session attach type.
    """
    name = type(builder).__name__
    is_session = attach_type.name == session
    if builder.session is not None and builder.session != is_session:
        wanted = session if builder.session else multi
        raise TypeError(f"{name}(session={builder.session}) needs attach type {wanted}, "
                        f"not {attach_type.name}")
    if is_session and builder.retprobe:
        raise ValueError(f"{name}: a session program ({attach_type.name}) runs at entry and at return already; "
                         "retprobe=True is refused")


def fill_common(builder: Any, member: Any, attach_type: AttachType, multi: str, session: str, return_flag: int,
                keep: list[Any]) -> None:
    """What the multi-probe builders fill alike: the mode check, ``cnt``, the return flag and the cookies."""
    check_mode(builder, attach_type, multi, session)
    member.cnt = builder._cnt
    member.flags = return_flag if builder.retprobe else 0
    if builder.cookies is not None:
        cookies = ffi.from_buffer("__u64[]", builder.cookies)
        member.cookies = cookies
        keep.append(cookies)


def check_flags(builder: Any) -> None:
    """``retprobe`` must be a bool and ``session`` a bool or None, and a session cannot also be a retprobe."""
    if not isinstance(builder.retprobe, bool):
        raise TypeError(f"retprobe must be a bool, not {type(builder.retprobe).__name__}")
    if builder.session is not None and not isinstance(builder.session, bool):
        raise TypeError(f"session must be a bool or None, not {type(builder.session).__name__}")
    if builder.session and builder.retprobe:
        raise ValueError("a session program runs at entry and at return already: retprobe=True is refused")


def mode_repr_parts(builder: Any) -> list[str]:
    """The ``retprobe=``/``session=`` parts of a builder's repr (only what differs from the defaults)."""
    parts = ["retprobe=True"] if builder.retprobe else []
    if builder.session is not None:
        parts.append(f"session={builder.session}")
    return parts


def array_repr(values: Any, *, hexa: bool = False) -> str:
    """``[1, 2, 3]``, or ``[1, 2, 3, 4, ... (1000 entries)]`` for long arrays."""
    shown = [hex(v) if hexa else str(v) for v in values[:_SHOWN]]
    if len(values) > _SHOWN:
        shown.append(f"... ({len(values)} entries)")
    return "[" + ", ".join(shown) + "]"
