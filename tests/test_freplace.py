"""freplace links: an EXT program (tests/bpf/freplace_ext.bpf.c) replaces the global function decide() of a
loaded sk_lookup program (tests/bpf/freplace_target.bpf.c) that runs in a private network namespace. While the
freplace link lives, the target's verdict changes: the test's datagrams are dropped and the EXT counts them.

Kernels that refuse EXT loads outright (EPERM as root, found by a trial load) skip with that reason."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import AttachType, Link, Object, Program, ProgType, asm, link_create, opts
from bpflink.features import FEATURES, kernel_version
from features import unsupported
from netns import NetPair, netns  # noqa: F401  (fixture)

LOOKUP = AttachType.SK_LOOKUP


@pytest.fixture
def target(bpf_objects: dict[str, Path], netns: NetPair) -> Iterator[Program]:  # noqa: F811
    """lookup_target, attached to the namespace (its verdict: pass, as decided by decide())."""
    with Object.open(bpf_objects["freplace_target"]) as obj, obj.program("lookup_target") as prog, \
            link_create(prog, f"/run/netns/{netns.name}", LOOKUP):
        assert netns.udp_deliveries(2) == 2
        yield prog


def ext_loads_refused(target: Program) -> str | None:
    """Established by trial: does this kernel refuse EXT loads with EPERM? (With a bogus function id a kernel
    that allows EXT answers EINVAL/ESRCH from the verifier instead.)"""
    try:
        Program.load(ProgType.EXT, asm.return_imm(0), attach_prog_fd=target.fd, attach_btf_id=0x7FFFFFF).close()
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return "this kernel refuses BPF_PROG_TYPE_EXT program loads (a minimal EXT load answered EPERM as root)"
    return None


@pytest.fixture
def ext(bpf_objects: dict[str, Path], target: Program) -> Iterator[Object]:
    """freplace_ext loaded against decide() of the target."""
    try:
        obj = Object.open(bpf_objects["freplace_ext"], attach_targets={"decide_drop": (target, "decide"),
                                                                         "decide_drop_too": (target, "decide")})
    except PermissionError as exc:
        unsupported("freplace", exc, extra_reason=ext_loads_refused(target))
    with obj:
        yield obj


def attach(ext_prog: Program, target: Program | None, freplace: opts.Freplace | None) -> Link:
    """As libbpf's bpf_program__attach_freplace: the attach type is the EXT program's expected attach type (before
    5.19 the kernel refuses any other with EINVAL; from 5.19 it ignores the attach type of an EXT link)."""
    assert ext_prog.expected_attach_type is not None
    try:
        return link_create(ext_prog, target, ext_prog.expected_attach_type, freplace)
    except OSError as exc:
        unsupported("freplace", exc)


def test_freplace_changes_the_target_while_the_link_lives(netns: NetPair, target: Program,  # noqa: F811
                                                          ext: Object) -> None:
    with ext.program("decide_drop") as prog, ext.map("calls") as calls:
        with attach(prog, None, None) as link:  # no opts: the load-time target
            assert netns.udp_deliveries(3) == 0
            assert calls.lookup_int(0) >= 3
            info = link.info()
            assert info.prog_id == prog.id
        assert netns.udp_deliveries(3) == 3  # closed: decide() is the original again


def test_freplace_opts_name_target_and_function(netns: NetPair, target: Program, ext: Object,  # noqa: F811
                                                bpf_no_leaks: object) -> None:
    with ext.program("decide_drop_too") as prog, ext.map("calls") as calls:
        with attach(prog, target, opts.Freplace.for_function(target, "decide")):
            assert netns.udp_deliveries(2) == 0
            assert calls.lookup_int(1) >= 2
        assert netns.udp_deliveries(2) == 2


def test_freplace_attach_type_other_than_the_expected_one(netns: NetPair, target: Program,  # noqa: F811
                                                          ext: Object) -> None:
    """The target's attach type instead of the EXT program's expected one: from 5.19 the kernel ignores it (the
    link fires); before, LINK_CREATE refuses it with EINVAL, and the error says what to pass."""
    with ext.program("decide_drop") as prog, ext.map("calls") as calls:
        assert prog.expected_attach_type != LOOKUP
        if kernel_version() < FEATURES["freplace_any_attach_type"].min_kernel:
            with pytest.raises(OSError) as refused:
                link_create(prog, None, LOOKUP)
            assert refused.value.errno == errno.EINVAL
            assert "expected attach type" in str(refused.value) and "5.19" in str(refused.value)
            assert netns.udp_deliveries(2) == 2 and calls.lookup_int(0) == 0  # nothing was attached
            return
        try:
            link = link_create(prog, None, LOOKUP)
        except OSError as exc:
            unsupported("freplace_any_attach_type", exc)
        with link:
            assert netns.udp_deliveries(2) == 0
            assert calls.lookup_int(0) >= 2


def test_function_btf_id_finds_global_functions_only(bpf_objects: dict[str, Path]) -> None:
    with Object.open(bpf_objects["freplace_target"]) as obj, obj.program("lookup_target") as prog:
        decide = opts.function_btf_id(prog, "decide")
        assert decide > 0 and opts.Freplace.for_function(prog, "decide") == opts.Freplace(target_btf_id=decide)
        assert opts.function_btf_id(prog, "lookup_target") not in (0, decide)
        with pytest.raises(ValueError, match="no function 'verdict'"):  # a variable
            opts.function_btf_id(prog, "verdict")
    with pytest.raises(ValueError, match="target_btf_id"):
        opts.Freplace(target_btf_id=0)
    with pytest.raises(TypeError):
        opts.Freplace(target_btf_id="1")  # type: ignore[arg-type]


def test_freplace_opts_fill_only_target_btf_id() -> None:
    built = opts.Freplace(target_btf_id=42).build(LOOKUP)
    assert (built.ptr.target_btf_id, built.ptr.flags) == (42, 0)


@pytest.mark.hostonly
def test_an_ext_programs_refusal_is_explained_by_freplace_hints() -> None:
    """An EXT link is routed by program type, so its attach type names the wrong family: link_create's failures
    for an EXT ``Program`` take freplace's hints (what the 5.10 guest shows for real in the test above)."""
    from bpflink.create import _family
    from bpflink.errors import hint_for

    with Program.load(ProgType.SOCKET_FILTER, asm.return_imm(0)) as plain, \
            Program(os.dup(plain.fd), prog_type=ProgType.EXT) as as_ext:  # only its recorded type matters here
        assert _family(LOOKUP, None, plain) == "netns"
        assert _family(LOOKUP, None, as_ext) == _family(LOOKUP, opts.Freplace(target_btf_id=1)) == "freplace"
    hint = hint_for(errno.EINVAL, "freplace") or ""
    assert "5.19" in hint and "expected_attach_type" in hint and "bpf_program__attach_freplace" in hint
