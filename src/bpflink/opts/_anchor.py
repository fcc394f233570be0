"""Where a program goes on a multi-program hook (tcx, netkit, cgroup): the one shared implementation.

The kernel (``kernel/bpf/mprog.c``) takes ``BPF_F_BEFORE``/``BPF_F_AFTER`` plus a relative object named
by fd (``relative_fd``) or by id (``relative_id`` + ``BPF_F_ID``), with ``BPF_F_LINK`` when that object is a
link rather than a program. No relative object: BEFORE means first, AFTER means last.

>>> Anchor.before(ProgId(7)).encode()[:2]
(12, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .._fd import HasFileno, as_fd
from ..enums import MprogFlags
from ._check import u32, u64


@dataclass(frozen=True)
class ProgId:
    """A program named by its kernel id (rather than by an fd)."""

    id: int

    def __post_init__(self) -> None:
        u32("ProgId.id", self.id)


@dataclass(frozen=True)
class LinkId:
    """A link named by its kernel id (rather than by an fd)."""

    id: int

    def __post_init__(self) -> None:
        u32("LinkId.id", self.id)


#: what an anchor can be relative to: a Link, a Program, a program fd (int), ProgId or LinkId
Relative = Union[HasFileno, int, ProgId, LinkId]


def _is_link(obj: object) -> bool:
    from ..link import Link

    return isinstance(obj, Link)


@dataclass(frozen=True)
class Anchor:
    """A position: ``Anchor.head()``, ``Anchor.tail()``, ``Anchor.before(x)``, ``Anchor.after(x)``."""

    where: MprogFlags
    relative: Relative | None = None

    def __post_init__(self) -> None:
        if self.where not in (MprogFlags.BEFORE, MprogFlags.AFTER):
            raise ValueError("Anchor.where must be MprogFlags.BEFORE or MprogFlags.AFTER")
        if self.relative is not None and not isinstance(self.relative, (ProgId, LinkId)):
            as_fd(self.relative, "anchor")  # TypeError/ValueError now, not at attach time

    @classmethod
    def head(cls) -> Anchor:
        """First on the hook."""
        return cls(MprogFlags.BEFORE)

    @classmethod
    def tail(cls) -> Anchor:
        """Last on the hook."""
        return cls(MprogFlags.AFTER)

    @classmethod
    def before(cls, relative: Relative) -> Anchor:
        return cls(MprogFlags.BEFORE, relative)

    @classmethod
    def after(cls, relative: Relative) -> Anchor:
        return cls(MprogFlags.AFTER, relative)

    def encode(self) -> tuple[int, int, int]:
        """``(flags, relative_fd, relative_id)`` exactly as ``link_create`` takes them."""
        flags = int(self.where)
        rel = self.relative
        if rel is None:
            return flags, 0, 0
        if isinstance(rel, ProgId):
            return flags | MprogFlags.ID, 0, rel.id
        if isinstance(rel, LinkId):
            return flags | MprogFlags.ID | MprogFlags.LINK, 0, rel.id
        if _is_link(rel):
            flags |= MprogFlags.LINK
        return flags, as_fd(rel, "anchor"), 0


def resolve_anchor(before: Relative | None, after: Relative | None, anchor: Anchor | None) -> Anchor | None:
    given = [x for x in (before, after, anchor) if x is not None]
    if len(given) > 1:
        raise ValueError("give at most one of before=, after=, anchor=")
    if before is not None:
        return Anchor.before(before)
    if after is not None:
        return Anchor.after(after)
    if anchor is not None and not isinstance(anchor, Anchor):
        raise TypeError(f"anchor must be an Anchor, not {type(anchor).__name__}")
    return anchor


def fill_mprog(opts: Any, member: Any, anchor: Anchor | None, expected_revision: int | None) -> None:
    """Fill ``opts.flags`` and the ``{relative_fd, relative_id, expected_revision}`` member."""
    if anchor is not None:
        flags, rel_fd, rel_id = anchor.encode()
        opts.flags = flags
        member.relative_fd = rel_fd
        member.relative_id = rel_id
    if expected_revision is not None:
        member.expected_revision = u64("expected_revision", expected_revision)
