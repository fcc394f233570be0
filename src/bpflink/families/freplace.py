"""The freplace family: ``Freplace`` opts re-attach a freplace (``BPF_PROG_TYPE_EXT``) program to a global
function of a target program other than (or the same as) the one it was loaded against (target: the target
program). Kernel >= 5.10.

Without opts (``link_create(ext, None, ext.expected_attach_type)``) the kernel attaches the EXT program where it
was verified to go (its load-time ``attach_prog_fd`` + function). With ``Freplace`` the target is the program
passed as ``target`` and ``target_btf_id`` names the function in that program's BTF; the two go together.

The attach type: pass the EXT program's expected attach type (``Program.expected_attach_type``; 0, i.e.
``AttachType.CGROUP_INET_INGRESS``, for a libbpf ``freplace/`` program), as libbpf's
``bpf_program__attach_freplace`` does. Linux 5.19 and later ignore the attach type of an EXT link, so any works
there; 5.10 to 5.18 refuse any other with EINVAL (their LINK_CREATE sends an EXT program through the check
``attach_type == prog->expected_attach_type``, and an EXT program's expected attach type is always 0 there).

>>> Freplace(target_btf_id=12)
Freplace(target_btf_id=12)
>>> # not run as a doctest: needs a loaded target program `target_prog` with a global function
>>> Freplace.for_function(target_prog, "decide")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .. import lowlevel as ll
from .._fd import FdLike, as_fd
from .._limits import U32_MAX, integer
from ..enums import AttachType
from ..errors import check, error
from ._base import LinkOpts
from ._family import Family, TargetKind

if TYPE_CHECKING:
    pass


def function_btf_id(prog: FdLike, name: str) -> int:
    """The BTF id of global function ``name`` in the BTF of loaded program ``prog``.

    ``ValueError`` when the program carries no BTF or no such function (static and inlined functions have none).
    """
    fd = as_fd(prog, "prog")
    if not isinstance(name, str) or not name:
        raise TypeError("name must be a non-empty str")
    if "\0" in name:
        raise ValueError(f"name must not contain a NUL byte: {name!r}")
    info = ll.ffi.new("struct bpf_prog_info *")
    size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_prog_info"))
    check(ll.bpf_prog_get_info_by_fd(fd, info, size), "prog_get_info_by_fd")
    if not info.btf_id:
        raise ValueError("the target program has no BTF (compile it with -g and load it through libbpf)")
    btf = ll.btf__load_from_kernel_by_id(info.btf_id)
    err = ll.libbpf_get_error(btf)
    if err:
        raise error(-err, f"btf__load_from_kernel_by_id({info.btf_id})")
    try:
        found = int(ll.btf__find_by_name_kind(btf, name.encode(), ll.BTF_KIND_FUNC))
    finally:
        ll.btf__free(btf)
    if found < 0:
        raise ValueError(f"the target program's BTF has no function {name!r} (it must be global, not static "
                         "or inlined)")
    return found


@dataclass(frozen=True)
class Freplace(LinkOpts):
    """``target_btf_id``: the BTF id of the function to replace in the target program (``for_function``)."""

    target_btf_id: int

    families: ClassVar[frozenset[str]] = frozenset({"freplace"})

    def __post_init__(self) -> None:
        integer("target_btf_id", self.target_btf_id, 1, U32_MAX)  # 0 would mean "load-time target"

    @classmethod
    def for_function(cls, target_prog: FdLike, name: str) -> Freplace:
        """Opts that replace global function ``name`` of ``target_prog``."""
        return cls(target_btf_id=function_btf_id(target_prog, name))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        # libbpf sends target_btf_id straight to the kernel, without any per-attach-type member
        opts.target_btf_id = self.target_btf_id


FAMILY = Family(
    name="freplace",
    # the kernel routes an EXT link by program type, not attach type (which must be the program's expected one
    # before 5.19: see the module docstring), so no attach type names this family and its builder takes any
    attach_types=(),
    any_attach_type=True,
    target=TargetKind.PROG,
    feature="freplace",
    hints={
        ("link_create", errno.EINVAL): "with Freplace opts, target must be the program whose BTF holds "
                                       "target_btf_id, a global function whose signature matches the one the "
                                       "EXT program was verified against; without opts, target must be None; "
                                       "before Linux 5.19 the attach type must be the EXT program's expected "
                                       "attach type (prog.expected_attach_type, 0 = CGROUP_INET_INGRESS for a "
                                       "freplace program), as libbpf's bpf_program__attach_freplace passes",
    },
    link_types=("TRACING",),
    opts=(Freplace,),
)

__all__ = ["FAMILY", "Freplace", "function_btf_id"]
