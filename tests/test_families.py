"""The family records are consistent, and every reader answers from them (no table of its own).

Pure bookkeeping over the records and argument resolution before any syscall: host only.
"""

from __future__ import annotations

import errno
import os

import pytest

import bpflink
from bpflink import AttachType, LinkType, families, opts, resolve
from bpflink.errors import hint_for
from bpflink.families import Family, TargetKind, by_name, family_of, record_of
from bpflink.features import FEATURES

pytestmark = pytest.mark.hostonly


def test_every_attach_type_has_one_family_and_every_name_a_record() -> None:
    names = {f.name for f in families.all()}
    for at in AttachType:
        fam = record_of(at)
        assert isinstance(fam, Family) and family_of(at) == fam.name in names
        assert at in fam.attach_types or fam.name == "other"
    assert families.all()[-1].name == "other"
    with pytest.raises(KeyError, match="no link family 'nope'"):
        by_name("nope")


def test_records_name_real_features_link_types_and_attach_types() -> None:
    decoded: dict[str, str] = {}
    for fam in families.all():
        if fam.feature is not None:
            assert fam.feature in FEATURES, fam.name
            assert fam.min_kernel == FEATURES[fam.feature].min_kernel
        for lt in fam.link_types:
            assert lt in LinkType.__members__, (fam.name, lt)
        for lt in fam.info:
            assert lt in fam.link_types and lt not in decoded, (fam.name, lt)
            decoded[lt] = fam.name
        for alias, at in fam.aliases.items():
            assert AttachType[at] in fam.attach_types, (fam.name, alias)
        for (op, err), hint in fam.hints.items():
            assert isinstance(op, str) and err in errno.errorcode and hint, (fam.name, op, err)
        for builder in fam.opts:
            assert builder.families == frozenset({fam.name}), builder
    # every link type bpflink decodes is decoded by exactly one family
    assert set(decoded) == {"CGROUP", "XDP", "TCX", "NETKIT", "NETFILTER", "ITER", "PERF_EVENT", "KPROBE_MULTI",
                            "UPROBE_MULTI", "NETNS", "STRUCT_OPS", "TRACING", "RAW_TRACEPOINT", "SOCKMAP"}


def test_every_public_builder_belongs_to_a_record() -> None:
    builders = {getattr(opts, n) for n in opts.__all__ if isinstance(getattr(opts, n), type)
                and issubclass(getattr(opts, n), opts.LinkOpts) and getattr(opts, n) is not opts.LinkOpts}
    assert builders == {b for f in families.all() for b in f.opts}


def test_freplace_opts_take_any_attach_type_through_the_record() -> None:
    from bpflink.create import _family

    assert by_name("freplace").any_attach_type and "freplace" not in {family_of(at) for at in AttachType}
    assert _family(AttachType.CGROUP_INET_EGRESS, opts.Freplace(target_btf_id=3)) == "freplace"  # its hints
    assert _family(AttachType.CGROUP_INET_EGRESS, opts.Cgroup()) == "cgroup"
    opts.Freplace(target_btf_id=3).check_attach_type(AttachType.CGROUP_INET_EGRESS)  # no TypeError
    with pytest.raises(TypeError, match="Tcx opts cannot be used with attach type XDP"):
        opts.Tcx().check_attach_type(AttachType.XDP)


def test_hints_come_from_the_records() -> None:
    assert hint_for(errno.EPERM, "tcx") == "creating this link needs CAP_NET_ADMIN besides CAP_BPF (or root)"
    assert hint_for(errno.EPERM, "uprobe_multi") == ("creating this link needs CAP_PERFMON besides CAP_BPF "
                                                      "(or root)")
    assert hint_for(errno.ENOENT, "netkit") == hint_for(errno.ENOENT, "cgroup") != hint_for(errno.ENOENT, None)
    assert hint_for(errno.EBUSY, "xdp") == by_name("xdp").hints[("link_create", errno.EBUSY)]
    assert "target_btf_id" in (hint_for(errno.EINVAL, "freplace") or "")
    assert hint_for(errno.EPERM, "other") == hint_for(errno.EPERM, None)  # no caps recorded: generic
    assert hint_for(errno.EPERM, "no-such-family") == hint_for(errno.EPERM, None)


def test_resolve_one_target_contract(tmp_path: os.PathLike[str]) -> None:
    tcx, fentry, cg = AttachType.TCX_INGRESS, AttachType.TRACE_FENTRY, AttachType.CGROUP_INET_EGRESS
    assert resolve.target(None, fentry) == resolve.target(0, fentry) == (0, -1)
    with pytest.raises(TypeError, match=r"query\(TCX_INGRESS\) needs a target: an ifindex or device name"):
        resolve.target(None, tcx, required=True, op="query")
    with pytest.raises(ValueError, match="needs a target"):
        resolve.target(0, tcx, required=True, op="query")
    assert resolve.target("lo", tcx) == (1, -1)
    with pytest.raises(ValueError, match="no network device named"):
        resolve.target("bpflink-nope0", tcx)
    with pytest.raises(TypeError, match="not a path or name"):
        resolve.target("lo", fentry)
    with pytest.raises(ValueError, match="fd must be in"):
        resolve.target(-1, tcx)
    with pytest.raises(TypeError):
        resolve.target(True, tcx)
    with pytest.raises(ValueError, match="must be a cgroup v2 directory"):
        resolve.target(os.devnull, cg)
    fd, opened = resolve.target(os.fspath(tmp_path), cg)  # a directory: opened, for the caller to close
    try:
        assert fd == opened >= 0 and TargetKind.CGROUP.takes_path
    finally:
        os.close(opened)


def test_resolve_attach_types() -> None:
    assert resolve.attach_type("tcx_egress") is resolve.attach_type(int(AttachType.TCX_EGRESS)) is \
        AttachType.TCX_EGRESS
    with pytest.raises(TypeError, match="attach_type must be an AttachType"):
        resolve.attach_type(1.5)
    with pytest.raises(ValueError):
        resolve.attach_type("not_an_attach_type")
    with pytest.raises(ValueError, match="is not an attach type"):
        resolve.attach_type(-3)
    assert resolve.FD_MAX == 2**31 - 1 and resolve.U32_MAX == 2**32 - 1


def test_builders_validate_once_into_declared_fields() -> None:
    import dataclasses

    for builder in (opts.Xdp(), opts.Tracing(cookie=1), opts.PerfEvent(cookie=2), opts.Iter(pid=1),
                    opts.Tcx(expected_revision=2), opts.KprobeMulti(syms=["a"]),
                    opts.Netfilter(2, 1, priority=1)):
        declared = {f.name for f in dataclasses.fields(builder)}
        assert set(vars(builder)) <= declared, (type(builder).__name__, set(vars(builder)) - declared)
    assert bpflink.opts.mprog.Tcx is opts.Tcx is families.tcx.Tcx
