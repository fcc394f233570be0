"""Where a program goes on a multi-program hook (tcx, netkit, cgroup): the one shared implementation.

The kernel (``kernel/bpf/mprog.c``) takes ``BPF_F_BEFORE``/``BPF_F_AFTER`` plus a relative object named
by fd (``relative_fd``) or by id (``relative_id`` + ``BPF_F_ID``), with ``BPF_F_LINK`` when that object is a
link rather than a program. No relative object: BEFORE means first, AFTER means last.

Rules taken from the kernel and enforced here before the syscall, because the kernel would not complain:
``relative_fd`` 0 without ``BPF_F_ID`` means "no relative object" (so an anchor on fd 0 would silently become
head/tail), and ``expected_revision`` 0 means "do not check" (revisions start at 1). Ids start at 1 too.

>>> Anchor.before(ProgId(7)).encode() == (MprogFlags.BEFORE | MprogFlags.ID, 0, 7)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .._fd import HasFileno, as_fd
from .._limits import U32_MAX, U64_MAX, integer
from ..enums import MprogFlags


@dataclass(frozen=True)
class ProgId:
    """A program named by its kernel id (rather than by an fd)."""

    id: int

    def __post_init__(self) -> None:
        integer("ProgId.id", self.id, 1, U32_MAX)


@dataclass(frozen=True)
class LinkId:
    """A link named by its kernel id (rather than by an fd)."""

    id: int

    def __post_init__(self) -> None:
        integer("LinkId.id", self.id, 1, U32_MAX)


#: what an anchor can be relative to: a Link, a Program, a program fd (int), ProgId or LinkId
Relative = Union[HasFileno, int, ProgId, LinkId]


#: the classes whose instances are links: ``bpflink.link`` registers ``Link`` (an anchor on a Link object is one,
#: so it is imported by then) rather than this module importing it from below
_LINK_CLASSES: tuple[type, ...] = ()


def register_link_class(cls: type) -> None:
    """Anchors relative to instances of ``cls`` are links to the kernel (``BPF_F_LINK``)."""
    global _LINK_CLASSES
    if cls not in _LINK_CLASSES:
        _LINK_CLASSES = (*_LINK_CLASSES, cls)


def _is_link(obj: object) -> bool:
    return isinstance(obj, _LINK_CLASSES)


@dataclass(frozen=True)
class Anchor:
    """A position: ``Anchor.head()``, ``Anchor.tail()``, ``Anchor.before(x)``, ``Anchor.after(x)``."""

    where: MprogFlags
    relative: Relative | None = None

    def __post_init__(self) -> None:
        if self.where not in (MprogFlags.BEFORE, MprogFlags.AFTER):
            raise ValueError("Anchor.where must be MprogFlags.BEFORE or MprogFlags.AFTER")
        # TypeError/ValueError now, not at attach time
        if (self.relative is not None and not isinstance(self.relative, (ProgId, LinkId))
                and as_fd(self.relative, "anchor") == 0):
                raise ValueError("anchor fd 0 means 'no relative program' to the kernel; use Anchor.head()/tail(), "
                                 "or name the program by ProgId")

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
        fd = as_fd(rel, "anchor")  # an fd owner may have been closed since the Anchor was made
        if fd == 0:
            raise ValueError("anchor fd 0 means 'no relative program' to the kernel")
        return flags, fd, 0


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
    """Fill ``opts.flags`` and the ``{relative_fd, relative_id, expected_revision}`` member from checked values."""
    if anchor is not None:
        flags, rel_fd, rel_id = anchor.encode()
        opts.flags = flags
        member.relative_fd = rel_fd
        member.relative_id = rel_id
    if expected_revision is not None:
        member.expected_revision = expected_revision


def revision(value: object) -> int:
    """A valid ``expected_revision``: 1..2**64-1 (0 would switch the kernel's check off)."""
    return integer("expected_revision", value, 1, U64_MAX)
