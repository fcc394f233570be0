"""What every opts builder is: a frozen description (a dataclass) that validates itself, then fills one
zeroed ``struct bpf_link_create_opts`` (only its own union member) for one attach type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import lowlevel as ll
from .._limits import u64
from ..enums import AttachType


class BuiltOpts:
    """A filled ``struct bpf_link_create_opts *`` plus every buffer (and fd) it points into.

    ``ptr`` itself keeps those buffers alive: holding only ``built.ptr`` (a temporary ``BuiltOpts``) is safe.
    ``close()`` (or ``with``) releases what it opened for the call (e.g. ``Iter(cgroup=path)``'s directory fd)
    now rather than at garbage collection; ``ptr`` is then refused. Not copyable or picklable: ``build()`` again.

    >>> from bpflink import AttachType, opts
    >>> with opts.Tracing(cookie=7).build(AttachType.TRACE_FENTRY) as built:
    ...     int(built.ptr.tracing.cookie)
    7
    >>> built.ptr
    Traceback (most recent call last):
    ...
    ValueError: I/O operation on closed BuiltOpts
    """

    __slots__ = ("__weakref__", "_ptr", "keepalive")

    def __init__(self, ptr: Any, keepalive: tuple[Any, ...] = ()) -> None:
        keep = tuple(keepalive)
        if isinstance(ptr, ll.ffi.CData):
            # a second cdata for the same struct whose finalizer closes over the buffers: they live as long as
            # any reference to ptr does, not only as long as this object
            ptr = ll.ffi.gc(ptr, lambda _p, _keep=keep: None)
        self._ptr: Any = ptr
        self.keepalive: tuple[Any, ...] = keep

    @property
    def ptr(self) -> Any:
        """The ``struct bpf_link_create_opts *`` for ``bpf_link_create``."""
        if self._ptr is None:
            raise ValueError("I/O operation on closed BuiltOpts")
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Release what the build opened (idempotent); the struct must not be passed to the kernel after."""
        keep, self.keepalive, self._ptr = self.keepalive, (), None
        for item in keep:
            close = getattr(item, "close", None)
            if close is not None and not isinstance(item, ll.ffi.CData):
                close()

    def __enter__(self) -> BuiltOpts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BuiltOpts {'closed' if self._ptr is None else 'open'}>"

    def __reduce__(self) -> Any:
        raise TypeError("a BuiltOpts owns C buffers and cannot be copied or pickled; call build() again")

    def __copy__(self) -> BuiltOpts:
        raise TypeError("a BuiltOpts owns C buffers and cannot be copied or pickled; call build() again")

    def __deepcopy__(self, memo: Any) -> BuiltOpts:
        raise TypeError("a BuiltOpts owns C buffers and cannot be copied or pickled; call build() again")


class LinkOpts:
    """Base of the typed builders in ``bpflink.opts``. Subclasses are frozen dataclasses.

    ``families``: the attach families (``bpflink.families.family_of``) the builder belongs to; a family whose
    record says ``any_attach_type`` (freplace: the kernel ignores it) takes every attach type.
    """

    families: ClassVar[frozenset[str]] = frozenset()

    def check_attach_type(self, attach_type: AttachType) -> None:
        """``TypeError`` naming both when this builder does not belong to ``attach_type``."""
        from . import by_name, family_of  # the registry imports this module first

        family = family_of(attach_type)
        if family in self.families or any(by_name(f).any_attach_type for f in self.families):
            return
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


@dataclass(frozen=True)
class CookieOpts(LinkOpts):
    """Base of the builders whose only option is the link's cookie: a u64 the program reads with
    ``bpf_get_attach_cookie()``, written to ``opts.<member>.<cookie_field>``."""

    cookie: int = 0
    _cookie: int = field(default=0, init=False, repr=False, compare=False)

    member: ClassVar[str] = ""
    cookie_field: ClassVar[str] = "cookie"

    def __post_init__(self) -> None:
        # the validated value is the one filled: __index__ runs once (an object could answer differently twice)
        object.__setattr__(self, "_cookie", u64("cookie", self.cookie))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        setattr(getattr(opts, self.member), self.cookie_field, self._cookie)
