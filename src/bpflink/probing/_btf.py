"""Probes for the attach types whose program names its target in the kernel's BTF when it is loaded.

iter, fentry/fexit/fsession/fmod_ret, lsm, lsm_cgroup and tp_btf programs carry ``attach_btf_id`` (a function
or ``btf_trace_<tp>`` typedef of vmlinux BTF) and are loaded against it; struct_ops links need programs for
the members of an ops struct and a ``BPF_F_LINK`` struct_ops map holding them. The targets are chosen so a
trial changes nothing: ``bpf_fentry_test1`` runs only under ``BPF_PROG_TEST_RUN``, the programs return
"allow"/0 (so fmod_ret on ``security_task_getpgid`` changes no result), the lsm_cgroup link sits on the
probe's empty cgroup, and the struct_ops probe registers a TCP congestion control named ``bpflinkp<pid>``
that nothing selects, for the moment between link create and close. Every fd is closed before a probe returns.

>>> # not run as a doctest: needs a probe trial's `run` (probing makes one)
>>> run(AttachType.TRACE_FENTRY, lambda: -1)  # doctest: +SKIP
(False, 1, "EPERM: program load refused: ... kernel lockdown ('integrity') ...")
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from .. import asm, kernel
from .. import lowlevel as ll
from ..enums import AttachType, MapType, MprogFlags, ProgType
from ..errors import errno_name, hint_for, prog_load_eperm_hint, strerror
from ..families import family_of
from ..features import explain
from ..symbols import BTF_KINDS
from ._harness import PROBE_PROG_NAME

_COOKIE = 1  # a tracing cookie makes libbpf call link_create only (no BPF_RAW_TRACEPOINT_OPEN fallback)
_TRAMPOLINES = "trampoline-based programs (fentry/fexit/fmod_ret/lsm)"


@dataclass(frozen=True)
class BtfTarget:
    """What a probe loads: program type, BTF kind and candidate names of the target (first found wins)."""

    prog_type: ProgType
    kind: str
    names: tuple[str, ...]
    ret: int = 0  # the program's return value: "allow" for lsm_cgroup, "do not change" elsewhere


_FENTRY_TEST = ("bpf_fentry_test1",)  # net/bpf/test_run.c: called only by BPF_PROG_TEST_RUN
TARGETS: dict[str, BtfTarget] = {
    "TRACE_ITER": BtfTarget(ProgType.TRACING, "func", ("bpf_iter_task", "bpf_iter_bpf_map")),
    "TRACE_FENTRY": BtfTarget(ProgType.TRACING, "func", _FENTRY_TEST),
    "TRACE_FEXIT": BtfTarget(ProgType.TRACING, "func", _FENTRY_TEST),
    "TRACE_FSESSION": BtfTarget(ProgType.TRACING, "func", _FENTRY_TEST),
    # fmod_ret may target any security_* function; bpf_modify_return_test is refused where the kernel has no
    # error-injection list for it (measured: Debian 6.1, CONFIG_FUNCTION_ERROR_INJECTION off). A program that
    # returns 0 leaves the result alone; getpgid(pid) is the only caller.
    "MODIFY_RETURN": BtfTarget(ProgType.TRACING, "func", ("security_task_getpgid",)),
    "LSM_MAC": BtfTarget(ProgType.LSM, "func", ("bpf_lsm_file_open",)),
    "LSM_CGROUP": BtfTarget(ProgType.LSM, "func", ("bpf_lsm_socket_bind",), ret=1),
    "TRACE_RAW_TP": BtfTarget(ProgType.TRACING, "typedef",
                              ("btf_trace_bpf_test_finish", "btf_trace_sched_process_fork")),
}
#: attach types probed here (struct_ops has no single load target, see _struct_ops)
NAMES = frozenset({*TARGETS, "STRUCT_OPS"})
#: the ``features.FEATURES`` entry each needs (tracing links are probed with a cookie, as opts.Tracing sends)
FEATURE = {"TRACE_FENTRY": "tracing_cookie", "TRACE_FEXIT": "tracing_cookie", "MODIFY_RETURN": "tracing_cookie",
           "TRACE_FSESSION": "fsession", "LSM_MAC": "lsm", "LSM_CGROUP": "lsm_cgroup",
           "TRACE_RAW_TP": "tp_btf_link", "TRACE_ITER": "iter", "STRUCT_OPS": "struct_ops"}

Verdict = tuple[bool, "int | None", str]  # (supported, errno, reason), as in ProbeResult


class _Refused(Exception):
    """A step failed; ``verdict`` says why."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict[2])
        self.verdict = verdict


def _load_refused(at: AttachType, prog_type: ProgType, err: int, log: str) -> Verdict:
    feature = FEATURE[at.name]
    if err == _errno.EPERM:
        if not kernel.has_capabilities(kernel.CAP_BPF, kernel.CAP_PERFMON):
            return False, err, f"EPERM: program load refused: {prog_load_eperm_hint(prog_type.name)}"
        mode = kernel.lockdown()
        who = "although this process holds CAP_BPF and CAP_PERFMON"
        if mode and at.name != "TRACE_ITER":
            return False, err, (f"EPERM: program load refused {who}: kernel lockdown ('{mode}') refuses "
                                f"{_TRAMPOLINES} even to root")
        return False, err, f"EPERM: program load refused {who}: a security module (LSM) policy forbids it"
    why = explain(feature) or hint_for(err) or strerror(err)
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("processed ")]
    if lines:  # libbpf retried with a verifier log: its last word names the cause
        why += f" (verifier: {lines[-1].strip()})"
    return False, err, f"{errno_name(err)}: program load refused: {why}"


def _link_refused(at: AttachType, err: int, what: str = "link_create refused") -> Verdict:
    feature = FEATURE[at.name]
    family = family_of(at)
    why = explain(feature)
    if not why and at.name == "LSM_MAC":  # link_create of an lsm program with a cookie (as probed) came in 5.19
        why = explain("tracing_cookie")
    why = why or hint_for(err, family) or strerror(err)
    return False, err, f"{errno_name(err)}: {what}: {why}"


# --- building blocks ---------------------------------------------------------------------------------------


@contextmanager
def _vmlinux_btf() -> Iterator[Any]:
    btf = ll.btf__load_vmlinux_btf()
    err = ll.libbpf_get_error(btf)
    if err:
        raise _Refused((False, None, f"not probed: the kernel's BTF cannot be read ({errno_name(-err)}); "
                                     "these attach types need CONFIG_DEBUG_INFO_BTF"))
    try:
        yield btf
    finally:
        ll.btf__free(btf)


def _find(btf: Any, target: BtfTarget) -> tuple[str, int]:
    for name in target.names:
        tid = int(ll.btf__find_by_name_kind(btf, name.encode(), BTF_KINDS[target.kind]))
        if tid > 0:
            return name, tid
    raise _Refused((False, None, f"not probed: vmlinux BTF has no {target.kind} "
                                 + " or ".join(target.names) + " to attach the probe to"))


def _load(at: AttachType, prog_type: ProgType, btf_id: int, expected: int, ret: int, stack: ExitStack) -> int:
    opts = ll.new_prog_load_opts()
    opts.expected_attach_type, opts.attach_btf_id = expected, btf_id
    log = ll.ffi.new("char[]", 4096)
    opts.log_buf, opts.log_size, opts.log_level = log, 4096, 0
    code = ll.ffi.new("char[]", asm.return_imm(ret))
    fd = ll.bpf_prog_load(int(prog_type), PROBE_PROG_NAME, b"GPL", ll.ffi.cast("struct bpf_insn *", code), 2, opts)
    if fd < 0:
        raise _Refused(_load_refused(at, prog_type, -fd, ll.ffi.string(log).decode(errors="replace")))
    stack.callback(os.close, fd)
    return fd


def _cookie_opts() -> Any:
    opts = ll.new_link_create_opts()
    opts.tracing.cookie = _COOKIE
    return opts


# --- the probes ---------------------------------------------------------------------------------------------


def _btf_target(at: AttachType, cgroup_fd: Callable[[], int], stack: ExitStack) -> Verdict:
    target = TARGETS[at.name]
    btf = stack.enter_context(_vmlinux_btf())
    name, btf_id = _find(btf, target)
    prog = _load(at, target.prog_type, btf_id, int(at), target.ret, stack)
    if at == AttachType.TRACE_ITER:
        link = ll.bpf_link_create(prog, 0, int(at), None)
    elif at == AttachType.LSM_CGROUP:
        link = ll.bpf_link_create(prog, cgroup_fd(), int(at), None)
    else:
        link = ll.bpf_link_create(prog, 0, int(at), _cookie_opts())
    if link < 0:
        if at == AttachType.TRACE_RAW_TP and -link == _errno.EINVAL:
            return _raw_tp_fallback(at, prog, btf_id, stack)
        return _link_refused(at, -link)
    stack.callback(os.close, link)
    if at == AttachType.TRACE_ITER:
        it = ll.bpf_iter_create(link)
        if it < 0:
            return _link_refused(at, -it, "iter_create refused")
        stack.callback(os.close, it)
        os.read(it, 4096)  # the no-op program prints nothing: a clean end of the walk is the proof
        return True, None, f"an iterator link on {name} was created and read"
    if at == AttachType.TRACE_RAW_TP:
        return True, None, f"a link on {name} was created and released" + _raw_tp_cookie(btf_id, stack)
    if at in (AttachType.LSM_MAC, AttachType.LSM_CGROUP):
        lsms, source = kernel.active_lsms()
        if "bpf" not in lsms:
            return False, None, (f"a link on {name} was created, but bpf is not an active LSM ({','.join(lsms)}"
                                 f", from {source}): its programs never run; boot with lsm=...,bpf")
    return True, None, f"a link on {name} was created and released"


_GET_ATTACH_COOKIE = 174  # enum bpf_func_id: BPF_FUNC_get_attach_cookie


def _raw_tp_cookie(btf_id: int, stack: ExitStack) -> str:
    """tp_btf links came to link_create before their cookie did (measured: 6.1 links them, ignores the cookie
    and refuses tp_btf programs that call bpf_get_attach_cookie); '' when such a program loads."""
    opts = ll.new_prog_load_opts()
    opts.expected_attach_type, opts.attach_btf_id = int(AttachType.TRACE_RAW_TP), btf_id
    code = ll.ffi.new("char[]", asm.call(_GET_ATTACH_COOKIE) + asm.return_imm(0))
    fd = ll.bpf_prog_load(int(ProgType.TRACING), PROBE_PROG_NAME, b"GPL", ll.ffi.cast("struct bpf_insn *", code),
                          3, opts)
    if fd >= 0:
        stack.callback(os.close, fd)
        return ""
    why = explain(FEATURE["TRACE_RAW_TP"])
    return (f"; but no cookies ({why}): a tp_btf program calling bpf_get_attach_cookie is refused "
            f"({errno_name(-fd)}) and the kernel ignores tracing.cookie")


def _raw_tp_fallback(at: AttachType, prog: int, btf_id: int, stack: ExitStack) -> Verdict:
    """Kernels whose link_create does not know tp_btf (before 6.10 where the cookie opts are refused, e.g. 5.10):
    libbpf retries without opts through RAW_TRACEPOINT_OPEN, so ``link_create`` without opts works."""
    link = ll.bpf_link_create(prog, 0, int(at), None)  # no opts: libbpf may fall back
    if link < 0:
        return False, _errno.EINVAL, ("EINVAL: link_create refused tp_btf; BPF_RAW_TRACEPOINT_OPEN failed too "
                                      f"({errno_name(-link)})")
    os.close(link)
    return True, None, ("link_create with a cookie was refused (EINVAL); a link without opts was created "
                        "through libbpf's BPF_RAW_TRACEPOINT_OPEN fallback" + _raw_tp_cookie(btf_id, stack))


# --- struct_ops --------------------------------------------------------------------------------------------

_CC_MEMBERS = ("ssthresh", "cong_avoid", "undo_cwnd")  # what tcp_congestion_ops requires


def _load_tiny_btf(stack: ExitStack) -> int:
    """A user BTF fd (one ``int`` type): the kernel wants one beside a struct_ops map's vmlinux value type."""
    btf = ll.btf__new_empty()
    if ll.libbpf_get_error(btf):
        raise _Refused((False, None, "not probed: libbpf could not allocate a BTF"))
    stack.callback(ll.btf__free, btf)  # frees the BTF and closes its fd
    if ll.btf__add_int(btf, b"int", 4, 0) < 0:
        raise _Refused((False, None, "not probed: libbpf could not write a BTF int type"))
    err = ll.btf__load_into_kernel(btf)
    if err < 0:
        raise _Refused((False, -err, f"not probed: loading a BTF for the struct_ops map failed ({errno_name(-err)})"))
    return int(ll.btf__fd(btf))


def _struct_ops(at: AttachType, stack: ExitStack) -> Verdict:
    from ..struct_ops import _members, build_value

    btf = stack.enter_context(_vmlinux_btf())
    ops_id = int(ll.btf__find_by_name_kind(btf, b"tcp_congestion_ops", ll.BTF_KIND_STRUCT))
    value_id = int(ll.btf__find_by_name_kind(btf, b"bpf_struct_ops_tcp_congestion_ops", ll.BTF_KIND_STRUCT))
    if ops_id < 0 or value_id < 0:
        return False, None, "not probed: vmlinux BTF has no tcp_congestion_ops struct_ops type (CONFIG_BPF_JIT?)"
    index = {name: i for i, (name, _, _) in enumerate(_members(btf, ops_id))}
    progs = {m: _load(at, ProgType.STRUCT_OPS, ops_id, index[m], 1, stack) for m in _CC_MEMBERS}
    opts = ll.new_map_create_opts()
    opts.btf_fd, opts.map_flags = _load_tiny_btf(stack), int(MprogFlags.LINK)
    opts.btf_vmlinux_value_type_id = value_id
    name = f"bpflinkp{os.getpid() % 10_000_000}"
    value = build_value("tcp_congestion_ops", {**progs, "name": name.encode()})
    fd = ll.bpf_map_create(int(MapType.STRUCT_OPS), b"bpflink_probe", 4, len(value), 1, opts)
    if fd < 0:
        return _link_refused(at, -fd, "struct_ops map with BPF_F_LINK refused")
    stack.callback(os.close, fd)
    key = ll.ffi.new("__u32 *", 0)
    err = ll.bpf_map_update_elem(fd, key, ll.ffi.from_buffer(value), 0)
    if err < 0:
        return _link_refused(at, -err, "writing the struct_ops value refused")
    link = ll.bpf_link_create(fd, 0, int(at), None)
    if link < 0:
        return _link_refused(at, -link)
    os.close(link)
    return True, None, "a tcp_congestion_ops struct_ops link was created and released"


def run(at: AttachType, cgroup_fd: Callable[[], int]) -> Verdict:
    """Probe ``at`` (one of ``NAMES``); ``cgroup_fd`` gives the probe's empty cgroup (lsm_cgroup)."""
    with ExitStack() as stack:
        try:
            if at == AttachType.STRUCT_OPS:
                return _struct_ops(at, stack)
            return _btf_target(at, cgroup_fd, stack)
        except _Refused as refused:
            return refused.verdict
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


__all__ = ["FEATURE", "NAMES", "TARGETS", "BtfTarget", "run"]
