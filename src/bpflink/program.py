"""``Program``: an fd owner for loaded BPF programs, from raw instructions or from a compiled ``.bpf.o``.

>>> from bpflink import Program, ProgType, AttachType, asm
>>> prog = Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
...                     expected_attach_type=AttachType.CGROUP_INET_EGRESS)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from typing import Union

from . import lowlevel as ll
from ._fd import FdLike, FdOwner, as_fd, c_string
from ._limits import U32_MAX, integer, u32
from .enums import AttachType, ProgType
from .errors import VerifierError, check, error, prog_load_eperm_hint
from .map import Map

Insns = Union[bytes, bytearray, memoryview, Sequence[Union[int, bytes]]]
_LOG_SIZE = 1 << 20  # the first buffer; grown on ENOSPC (the log did not fit) up to the kernel's limit
_LOG_MIN = 128  # the kernel refuses smaller log buffers (EINVAL)
_LOG_MAX = U32_MAX >> 2  # the kernel refuses larger ones (kernel/bpf/log.c)


def is_prog_fd(fd: int) -> bool | None:
    """Whether ``fd`` is a BPF program, as the kernel says: ``BPF_PROG_BIND_MAP`` with map fd -1 fails with
    ``EINVAL`` for a non-program and with ``EBADF`` (the map fd) for a program, changing nothing. None when
    the kernel does not say (an unprivileged caller's EPERM)."""
    ret = int(ll.bpf_prog_bind_map(fd, -1, ll.ffi.NULL))
    if ret == -errno.EBADF:
        return True
    if ret == -errno.EINVAL:
        return False
    return None


def _insn_bytes(insns: Insns) -> bytes:
    if isinstance(insns, (bytes, bytearray, memoryview)):
        raw = bytes(insns)
    elif isinstance(insns, Iterable):
        parts = []
        for i, item in enumerate(insns):
            if isinstance(item, (bytes, bytearray)) and len(item) % 8 == 0:
                parts.append(bytes(item))
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1 << 64:
                parts.append(item.to_bytes(8, "little"))
            else:
                raise TypeError(f"insns[{i}] must be 8-byte-multiple bytes or a u64 int, not {item!r}")
        raw = b"".join(parts)
    else:
        raise TypeError(f"insns must be bytes or a sequence of instructions, not {type(insns).__name__}")
    if not raw or len(raw) % 8:
        raise ValueError(f"insns must be a non-empty multiple of 8 bytes, got {len(raw)}")
    return raw


class Program(FdOwner):
    """A loaded BPF program. ``maps`` holds the maps of the object it came from (``from_object``)."""

    #: the ELF section it came from (``Object.program``): ``bpflink.attach`` attaches by it
    section_name: str | None = None

    def __init__(self, fd: int, *, prog_type: ProgType | int = ProgType.UNSPEC, name: str = "",
                 expected_attach_type: AttachType | int | None = None, maps: dict[str, Map] | None = None) -> None:
        super().__init__(fd)  # ValueError/TypeError unless an int in 0..2**31-1
        if is_prog_fd(fd) is False:
            self.detach_fd()  # not ours to close: the caller keeps it
            raise TypeError(f"fd {fd} is not a BPF program")
        self.prog_type = ProgType(prog_type)
        self.name = name
        self.expected_attach_type = None if expected_attach_type is None else AttachType(expected_attach_type)
        self.maps: dict[str, Map] = maps or {}

    @classmethod
    def load(cls, prog_type: ProgType | int, insns: Insns, *, expected_attach_type: AttachType | int | None = None,
             attach_btf_id: int | None = None, attach_prog_fd: FdLike | None = None,
             attach_btf_obj_fd: FdLike | None = None, license: str | bytes = "GPL", name: str | bytes | None = None,
             log_level: int = 0, prog_flags: int = 0, log_size: int | None = None) -> Program:
        """``bpf_prog_load`` from raw ``struct bpf_insn`` bytes (or a sequence of them).

        On refusal raises ``VerifierError`` (an ``OSError``) whose ``log`` is the verifier's log. The log
        buffer starts at 1 MiB and grows when the log does not fit (as libbpf does), up to the kernel's
        limit; ``log_size=`` fixes its size instead (128 bytes to 1 GiB).
        """
        ptype = ProgType(prog_type)
        raw = _insn_bytes(insns)
        opts = ll.new_prog_load_opts()
        if expected_attach_type is not None:
            opts.expected_attach_type = int(AttachType(expected_attach_type))
        if attach_btf_id is not None:
            opts.attach_btf_id = u32("attach_btf_id", attach_btf_id)
        if attach_prog_fd is not None:
            opts.attach_prog_fd = as_fd(attach_prog_fd, "attach_prog_fd")
        if attach_btf_obj_fd is not None:
            opts.attach_btf_obj_fd = as_fd(attach_btf_obj_fd, "attach_btf_obj_fd")
        opts.prog_flags = u32("prog_flags", prog_flags)
        level = u32("log_level", log_level)
        fixed = None if log_size is None else integer("log_size", log_size, _LOG_MIN, _LOG_MAX)
        cname = c_string(name, "name")[:15] if name else None
        clicense = c_string(license, "license")
        buf = ll.ffi.from_buffer(raw)
        size = _LOG_SIZE if fixed is None else fixed
        while True:
            log = ll.ffi.new("char[]", size)
            opts.log_buf, opts.log_size, opts.log_level = log, size, level
            opts.log_true_size = 0
            ret = ll.bpf_prog_load(int(ptype), cname, clicense, ll.ffi.cast("struct bpf_insn *", buf),
                                   len(raw) // 8, opts)
            if ret != -errno.ENOSPC or fixed is not None or size >= _LOG_MAX:
                break
            # the log did not fit (with log_level 0, libbpf's retry with level 1 after a failure): grow to
            # what the kernel says it needed (6.4+), else 4x, and load again
            size = min(_LOG_MAX, max(int(opts.log_true_size) + 1, size * 4))
        if ret < 0:
            if -ret == errno.EPERM:  # missing privileges, not a verifier verdict: a plain PermissionError
                raise error(-ret, f"prog_load({ptype.name})", hint=prog_load_eperm_hint(ptype.name))
            text = ll.ffi.string(log, size).decode(errors="replace")
            hint = ("the verifier log did not fit in log_size; pass a larger log_size= (or none to let it grow)"
                    if -ret == errno.ENOSPC else None)
            base = error(-ret, f"prog_load({ptype.name})", hint=hint)
            raise VerifierError(-ret, base.strerror or str(base), text)
        return cls(ret, prog_type=ptype, name=os.fsdecode(cname or b""), expected_attach_type=expected_attach_type)

    @classmethod
    def from_object(cls, path: str | os.PathLike[str], name: str) -> Program:
        """Load program ``name`` from a compiled BPF ELF object (only that program is loaded).

        The object's maps stay alive through the program and are in ``program.maps``. Each call opens and
        loads the file anew: two calls on one file make two separate copies of its maps, so programs that must
        share a map should come from one ``bpflink.Object`` (``Object.open(path).program(name)``).
        """
        from .object import Object

        with Object.open(path, programs=[name]) as obj:
            return obj.program(name)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open an fd to a loaded program by id (needs CAP_SYS_ADMIN)."""
        pid = integer("prog_id", prog_id, 1, U32_MAX)
        from .link import _GET_FD_BY_ID_HINT

        fd = check(ll.bpf_prog_get_fd_by_id(pid), f"prog_get_fd_by_id({pid})", hint=_GET_FD_BY_ID_HINT)
        return cls(fd)

    @property
    def id(self) -> int:
        """The kernel's id of this program."""
        info = ll.ffi.new("struct bpf_prog_info *")
        size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_prog_info"))
        check(ll.bpf_prog_get_info_by_fd(self.fd, info, size), "prog_get_info_by_fd")
        return int(info.id)

    def close(self) -> None:
        super().close()
        for m in self.maps.values():
            m.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<Program {self.name!r} {self.prog_type.name} {state}>"
