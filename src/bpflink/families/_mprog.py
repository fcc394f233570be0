"""What the multi-program hooks (tcx, netkit, cgroup) share: one anchor model, validated once.

>>> from bpflink.opts import ProgId, Tcx
>>> Tcx(before=ProgId(42), expected_revision=3)  # doctest: +ELLIPSIS
Tcx(before=ProgId(id=42), after=None, anchor=None, expected_revision=3)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..enums import AttachType
from ._anchor import Anchor, Relative, fill_mprog, resolve_anchor, revision
from ._base import LinkOpts

#: the link_create hint every multi-program family gives for ENOENT
ANCHOR_MISSING = "the anchor (before=/after=/anchor=) is not attached at this hook, or does not exist"
#: (operation, errno) hints every multi-program family shares
MPROG_HINTS = {("link_create", errno.ENOENT): ANCHOR_MISSING}


@dataclass(frozen=True)
class Mprog(LinkOpts):
    """Base of ``Tcx``, ``Netkit`` and ``Cgroup``: ``before``/``after``/``anchor`` (one of them) and
    ``expected_revision``, checked once when the builder is made."""

    before: Relative | None = None
    after: Relative | None = None
    anchor: Anchor | None = None
    expected_revision: int | None = None
    _anchor: Anchor | None = field(default=None, init=False, repr=False, compare=False)
    _revision: int | None = field(default=None, init=False, repr=False, compare=False)

    member: ClassVar[str] = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_anchor", resolve_anchor(self.before, self.after, self.anchor))
        if self.expected_revision is not None:
            object.__setattr__(self, "_revision", revision(self.expected_revision))

    @property
    def ordered(self) -> bool:
        """True when the builder asks for a position or a revision (not a plain append)."""
        return self._anchor is not None or self._revision is not None

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        fill_mprog(opts, getattr(opts, self.member), self._anchor, self._revision)
