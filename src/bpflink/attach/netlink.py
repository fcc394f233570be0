"""XDP through rtnetlink (``RTM_SETLINK`` with ``IFLA_XDP``): how a program attaches to a device before XDP links
(5.9), as libbpf's ``bpf_xdp_attach`` does. The handle (``kind == "netlink"``) detaches on close, only if the
device still runs this program (``XDP_FLAGS_REPLACE`` + ``IFLA_XDP_EXPECTED_FD``, kernel >= 5.7), through the
netlink socket it attached with: that socket belongs to the network namespace the device is in, wherever the
handle is closed from.

>>> # not run as a doctest: needs a loaded object `obj` and a device eth0
>>> link = obj.attach("xdp_drop", "eth0", mode="legacy")  # doctest: +SKIP
>>> link.kind  # doctest: +SKIP
'netlink'
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from typing import Any

from .._fd import FdLike, as_fd
from ..enums import AttachType
from ..errors import error
from .legacy import LegacyLink

# <linux/rtnetlink.h>, <linux/netlink.h>, <linux/if_link.h>: message types, flags and attribute numbers
_RTM_SETLINK, _NLMSG_ERROR = 19, 2
_NLM_F_REQUEST, _NLM_F_ACK = 0x1, 0x4
_IFLA_XDP, _NLA_F_NESTED = 43, 0x8000
_IFLA_XDP_FD, _IFLA_XDP_FLAGS, _IFLA_XDP_EXPECTED_FD = 1, 3, 8
_XDP_FLAGS_UPDATE_IF_NOEXIST, _XDP_FLAGS_REPLACE = 1 << 0, 1 << 4
_MODES = (1 << 1) | (1 << 2) | (1 << 3)  # SKB, DRV, HW
_lock = threading.Lock()
_seq = [0]


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _setlink_xdp(sock: socket.socket, ifindex: int, prog_fd: int, flags: int, expected_fd: int | None = None) -> int:
    """One ``RTM_SETLINK`` with ``IFLA_XDP``; the kernel's answer as 0 or a negative errno."""
    nested = _attr(_IFLA_XDP_FD, struct.pack("=i", prog_fd)) + _attr(_IFLA_XDP_FLAGS, struct.pack("=I", flags))
    if expected_fd is not None:
        nested += _attr(_IFLA_XDP_EXPECTED_FD, struct.pack("=i", expected_fd))
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, ifindex, 0, 0) + _attr(_IFLA_XDP | _NLA_F_NESTED, nested)
    with _lock:
        _seq[0] += 1
        seq = _seq[0]
    msg = struct.pack("=IHHII", 16 + len(body), _RTM_SETLINK, _NLM_F_REQUEST | _NLM_F_ACK, seq, 0) + body
    sock.send(msg)
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _flags, rseq, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                return -errno.EPROTO
            if mtype == _NLMSG_ERROR and rseq == seq:
                (err,) = struct.unpack_from("=i", data, off + 16)
                return int(err)
            off += (length + 3) & ~3


class NetlinkXdpLink(LegacyLink):
    """An XDP program on a device through rtnetlink. Its fd is a duplicate of the program's; ``close()``
    detaches it (if the device still runs it) and closes that fd."""

    def __init__(self, prog_fd: int, sock: socket.socket, ifindex: int, flags: int, name: str) -> None:
        super().__init__(prog_fd, kind="netlink", events=(name,), attach_type=AttachType.XDP)
        self.ifindex, self._mode, self._sock = ifindex, flags & _MODES, sock
        self._detach_lock = threading.Lock()
        self._attached = True

    def close(self) -> None:
        """Detach (``RTM_SETLINK`` with fd -1, only if the device still runs this program), then close."""
        with self._detach_lock:
            if not self._attached:
                return
            self._attached = False
            try:
                ret = _setlink_xdp(self._sock, self.ifindex, -1, _XDP_FLAGS_REPLACE | self._mode, self.fileno())
                if ret == -errno.EINVAL:  # before 5.7: no REPLACE/EXPECTED_FD, a plain detach
                    ret = _setlink_xdp(self._sock, self.ifindex, -1, self._mode)
            finally:
                self._sock.close()
                LegacyLink.close(self)
        if ret < 0 and -ret not in (errno.EEXIST, errno.ENODEV):  # replaced by someone else / device gone
            raise error(-ret, f"xdp netlink detach({self._events[0]})", family="xdp")


def xdp_netlink(prog: FdLike, device: str | int, flags: int = 0) -> NetlinkXdpLink:
    """Attach XDP program ``prog`` to ``device`` (a name in the caller's network namespace, or an ifindex) through
    rtnetlink, refusing a device that already runs an XDP program (``XDP_FLAGS_UPDATE_IF_NOEXIST``). ``flags``:
    at most one of ``XdpFlags.SKB_MODE``/``DRV_MODE``/``HW_MODE``."""
    prog_fd = as_fd(prog, "prog")
    if isinstance(device, str):
        try:
            ifindex = socket.if_nametoindex(device)
        except OSError:
            raise ValueError(f"no network device named {device!r}") from None
    elif isinstance(device, int) and not isinstance(device, bool) and device > 0:
        ifindex = device
    else:
        raise TypeError(f"device must be a device name or a positive ifindex, not {device!r}")
    if not isinstance(flags, int) or flags & ~_MODES or bin(flags & _MODES).count("1") > 1:
        raise ValueError(f"flags must be at most one of XdpFlags.SKB_MODE/DRV_MODE/HW_MODE, got {flags!r}")
    own = os.dup(prog_fd)  # detaching names the program: keep it alive as long as the handle
    sock = None
    try:
        sock = _socket()  # in the caller's network namespace: the device's
        ret = _setlink_xdp(sock, ifindex, own, _XDP_FLAGS_UPDATE_IF_NOEXIST | flags)
        if ret < 0:
            raise error(-ret, f"xdp netlink attach({device})", family="xdp",
                        hint="EBUSY/EEXIST: the device already has an XDP program; EINVAL: not an XDP program, "
                             "or the driver lacks the mode asked")
    except BaseException:
        if sock is not None:
            sock.close()
        os.close(own)
        raise
    return NetlinkXdpLink(own, sock, ifindex, flags, f"xdp:{device}")


def _flags_of(opts: Any) -> int:
    return int(getattr(opts, "_flags", 0)) if opts is not None else 0


__all__ = ["NetlinkXdpLink", "xdp_netlink"]
