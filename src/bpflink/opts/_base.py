"""What every opts builder is: a frozen description (a dataclass) that validates itself, then fills one
zeroed ``struct bpf_link_create_opts`` (only its own union member) for one attach type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .. import lowlevel as ll
from ..enums import AttachType
from ..families import family_of


@dataclass(frozen=True)
class BuiltOpts:
    """A filled ``struct bpf_link_create_opts *`` plus every buffer it points into.

    Keep this object alive for as long as the C call runs: ``keepalive`` owns the arrays and strings.
    """

    ptr: Any
    keepalive: tuple[Any, ...] = ()


class LinkOpts:
    """Base of the typed builders in ``bpflink.opts``. Subclasses are frozen dataclasses.

    ``families``: the attach families (``bpflink.families.family_of``) the builder belongs to.
    """

    families: ClassVar[frozenset[str]] = frozenset()

    def check_attach_type(self, attach_type: AttachType) -> None:
        """``TypeError`` naming both when this builder does not belong to ``attach_type``."""
        family = family_of(attach_type)
        if family not in self.families:
            raise TypeError(
                f"{type(self).__name__} opts cannot be used with attach type {attach_type.name} "
                f"(a {family} attach type); {type(self).__name__} is for {', '.join(sorted(self.families))}"
            )

    def build(self, attach_type: AttachType) -> BuiltOpts:
        """Check the attach type, then fill a fresh opts struct."""
        self.check_attach_type(attach_type)
        opts = ll.new_link_create_opts()
        keep: list[Any] = [opts]
        self._fill(opts, attach_type, keep)
        return BuiltOpts(opts, tuple(keep))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        raise NotImplementedError
