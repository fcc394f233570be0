"""Tracing links (fentry, fexit, fmod_ret, lsm, tp_btf) with cookies read by bpf_get_attach_cookie, on
security_task_getpgid / the task_getpgid LSM hook (triggered by getpgid) and the sched_process_fork BTF
tracepoint; opts.Tracing's checks."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from bpflink import AttachType, Link, Program, link_create, opts
from bpflink.errors import NotSupportedError, VerifierError
from honest_skips import link_or_skip, unsupported
from tracehelp import RETURN, hits, load

TRAMPOLINE_FEATURE = "tracing_cookie"

# getpgid/getsid of pid 0 skip the security hook (kernel/sys.c); an explicit pid goes through it
ME = os.getpid()


def _tp_btf_loads(obj: Path) -> bool:
    try:
        load(obj, "tp_btf_fork").close()
    except OSError:
        return False
    return True


def load_trampoline_prog(obj: Path, name: str) -> Program:
    """Load a fentry/fexit/fmod_ret/lsm program, or skip with the refusal this test probed."""
    try:
        return load(obj, name, only_me=True)
    except (OSError, VerifierError) as exc:
        reason = None
        # probed: root is refused (EPERM, before verification) while a tp_btf program, also
        # BPF_PROG_TYPE_TRACING, loads from the same object: a kernel policy on trampolines, not bpflink
        if isinstance(exc, PermissionError) and os.geteuid() == 0 and _tp_btf_loads(obj):
            reason = (f"the kernel refuses loading {name} (trampoline-based tracing) with EPERM to root while "
                      "tp_btf programs load")
        unsupported(TRAMPOLINE_FEATURE, exc, extra_reason=reason)


def attach(prog: Program, at: AttachType, cookie: int, feature: str = TRAMPOLINE_FEATURE) -> Link:
    return link_or_skip(feature, prog, None, at, opts.Tracing(cookie=cookie))


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["trace_tracing"]


def test_fentry_and_fexit_with_cookies(obj: Path) -> None:
    with load_trampoline_prog(obj, "fentry_getpgid") as entry, load_trampoline_prog(obj, "fexit_getpgid") as exit_:
        with attach(entry, AttachType.TRACE_FENTRY, 21), attach(exit_, AttachType.TRACE_FEXIT, 22):
            for _ in range(3):
                os.getpgid(ME)
            assert hits(entry, 21) == 3
            assert hits(exit_, 22 | RETURN) == 3
        os.getpgid(ME)
        assert hits(entry, 21) == 3


def test_fmod_ret_changes_the_result_for_this_process_only(obj: Path) -> None:
    with load_trampoline_prog(obj, "fmod_ret_getpgid") as prog:
        with attach(prog, AttachType.MODIFY_RETURN, 23):
            for _ in range(2):
                with pytest.raises(PermissionError):
                    os.getpgid(ME)
            assert hits(prog, 23) == 2
        assert os.getpgid(ME) == os.getpgid(0)  # the link is gone: getpgid works again (pid 0 skips the hook)


def active_lsms() -> list[str]:
    """The kernel's active LSMs (securityfs is mounted first when it is not, as in a bare VM)."""
    path = Path("/sys/kernel/security/lsm")
    if not path.exists():
        subprocess.run(["mount", "-t", "securityfs", "securityfs", str(path.parent)], capture_output=True)
    return path.read_text().strip().split(",") if path.exists() else []


def test_lsm_hook_with_cookie(obj: Path) -> None:
    active = active_lsms()
    prog = load_trampoline_prog(obj, "lsm_getpgid")
    with prog:
        try:
            link = link_create(prog, None, AttachType.LSM_MAC, opts.Tracing(cookie=24))
        except OSError as exc:
            if isinstance(exc, NotSupportedError):  # lsm programs load (5.7); their link_create came in 5.19
                assert exc.min_kernel == "5.19", exc
            reason = None if "bpf" in active else f"bpf is not an active LSM ({','.join(active)})"
            unsupported(TRAMPOLINE_FEATURE, exc, extra_reason=reason)
        with link:
            if "bpf" not in active:  # the link exists but the hook never calls BPF
                pytest.skip(f"bpf is not an active LSM ({','.join(active)}): the link cannot fire")
            os.getpgid(ME)
            assert hits(prog, 24) == 1


def test_tp_btf_with_cookie_counts_forks(obj: Path) -> None:
    try:
        prog = load(obj, "tp_btf_fork", only_me=True)
    except OSError as exc:  # before 6.10 the verifier knows no bpf_get_attach_cookie for tp_btf programs
        unsupported("tp_btf_link", exc)
    with prog:
        with attach(prog, AttachType.TRACE_RAW_TP, 25, "tp_btf_link"):
            for _ in range(3):
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                os.waitpid(pid, 0)
            assert hits(prog, 25) == 3
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        assert hits(prog, 25) == 3


def test_wrong_program_for_the_attach_type_is_einval(obj: Path) -> None:
    with load(obj, "tp_btf_plain") as prog, pytest.raises(OSError) as info:
        link_create(prog, None, AttachType.TRACE_FENTRY, opts.Tracing(cookie=1)).close()
    if isinstance(info.value, NotSupportedError):  # before 5.19 link_create knows no fentry at all
        unsupported(TRAMPOLINE_FEATURE, info.value)
    assert info.value.errno == errno.EINVAL


# --- validation ------------------------------------------------------------------------------------------------
@pytest.mark.hostonly
@pytest.mark.parametrize(("cookie", "exc"), [(-1, ValueError), (1 << 64, ValueError), ("1", TypeError),
                                             (False, TypeError), (2.0, TypeError)])
def test_cookie_checks(cookie: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="cookie"):
        opts.Tracing(cookie=cookie)  # type: ignore[arg-type]


@pytest.mark.hostonly
@pytest.mark.parametrize("at", [AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN,
                                AttachType.LSM_MAC, AttachType.TRACE_RAW_TP])
def test_every_tracing_attach_type_takes_the_cookie(at: AttachType) -> None:
    b = opts.Tracing(cookie=(1 << 64) - 1).build(at)  # a temporary would free the struct before the read
    assert int(b.ptr.tracing.cookie) == (1 << 64) - 1


@pytest.mark.hostonly
def test_tracing_opts_refuse_other_attach_types() -> None:
    with pytest.raises(TypeError, match=r"Tracing.*PERF_EVENT"):
        opts.Tracing(cookie=1).build(AttachType.PERF_EVENT)
