"""build_ffi.py's generated parts: the offset table (every member cffi lays out itself, checked at import), the
presence probe for names the headers may lack, and how an absent name behaves at run time. tests/layout_probe.c
(tests/test_wheel.py) stays the independent check of the layouts themselves.
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bpflink
from bpflink import _native
from bpflink._native import ffi, lib

pytestmark = pytest.mark.hostonly

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import build_ffi  # noqa: E402


def _table() -> set[tuple[str, str]]:
    return {(ffi.string(e.type).decode(), ffi.string(e.member).decode())
            for e in (lib.bpflink_layout_table[i] for i in range(lib.bpflink_layout_count))}


def test_offset_table_is_the_cdefs_unchecked_members() -> None:
    config = build_ffi.libbpf_config()
    text = build_ffi.preprocess(config["include_dirs"])
    rows = build_ffi.layout_rows(build_ffi.cdef_text(text, set(_native.ABSENT)))
    assert set(rows) == _table()
    # the members cffi places itself: nested in anonymous structs and unions, and beside an anonymous union
    assert {("struct bpf_link_create_opts", "tcx.expected_revision"), ("struct bpf_link_info", "iter.task.pid"),
            ("union bpf_iter_link_info", "cgroup.cgroup_id"), ("struct perf_event_attr", "probe_offset"),
            ("struct bpf_prog_query_opts", "count")} <= set(rows)
    # and every one agrees with the C compiler (what _native checks at import, here against ffi.offsetof)
    for i in range(lib.bpflink_layout_count):
        e = lib.bpflink_layout_table[i]
        ctype, member = ffi.string(e.type).decode(), ffi.string(e.member).decode()
        assert ffi.offsetof(ctype, *member.split(".")) == e.offset, (ctype, member)


def test_if_blocks_nest() -> None:
    src = ("a\n/*@if X*/\nb\n/*@if Y*/\nc\n/*@end*/\nd\n/*@end*/\n/*@if Y*/\ne\n/*@end*/\nf\n")
    assert build_ffi._select(src, set()).split() == list("abcdef")
    assert build_ffi._select(src, {"Y"}).split() == list("abdf")
    assert build_ffi._select(src, {"X"}).split() == list("aef")


def test_has_answers_for_conditional_names_only() -> None:
    assert _native.has("BPF_F_REPLACE") is True  # in every uapi header bpflink builds against
    with pytest.raises(KeyError, match="not a conditional name"):
        _native.has("struct bpf_link_info.no_such_member")
    assert set(_native.CONDITIONAL) == set(build_ffi.conditional_names())
    if bpflink.libbpf_version() == "1.7":  # the bundled libbpf's own uapi copy has everything bpflink declares
        assert not _native.ABSENT


def test_an_absent_constant_refuses_every_use() -> None:
    absent = _native.Absent("BPF_F_SOMETHING_NEWER")
    for use in (lambda: 1 | absent, lambda: absent | 1, lambda: int(absent), lambda: absent & 2,
                lambda: ffi.new("__u32 *", absent)):  # type: ignore[operator]
        with pytest.raises(bpflink.NotSupportedError, match="BPF_F_SOMETHING_NEWER") as info:
            use()
        assert isinstance(info.value, OSError)

    class Flags(enum.IntFlag):  # as enums.py declares its flag sets: an absent flag is no member, no alias
        A = 1
        B = absent  # type: ignore[assignment]

    assert list(Flags) == [Flags.A] and Flags.B is absent


LIBC_DEV = sorted((ROOT / "build" / "wheel-root").glob("linux-libc-dev-6.1.*/usr/include"))


@pytest.mark.hostonly  # a build check; its headers come from the host's test_wheel run, beside the guests
@pytest.mark.skipif(not LIBC_DEV, reason="no unpacked bookworm linux-libc-dev 6.1 (tests/test_wheel.py fetches it)")
@pytest.mark.skipif(subprocess.run(["pkg-config", "--exists", "libbpf"]).returncode != 0,
                    reason="no system libbpf-dev")
def test_bookworm_uapi_headers_make_names_absent_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """libbpf-dev 1.4 with Linux 6.1's <linux/bpf.h>: the members and flags 6.1 lacks become absent names and
    the whole cffi source then compiles (the syntax check the build runs before compiling)."""
    headers = LIBC_DEV[-1]
    monkeypatch.setenv("BPFLINK_LIBBPF", "system")
    monkeypatch.setenv("CPATH", f"{headers}:{headers / (os.uname().machine + '-linux-gnu')}")
    config = build_ffi.libbpf_config()
    text = build_ffi.preprocess(config["include_dirs"])
    names = build_ffi.conditional_names()
    absent = build_ffi.probe_presence(names, config["include_dirs"])
    assert {"struct bpf_link_info.tcx", "struct bpf_link_info.netfilter", "struct bpf_link_info.perf_event",
            "struct bpf_link_info.kprobe_multi", "struct bpf_link_info.sockmap", "BPF_F_BEFORE",
            "BPF_F_NETFILTER_IP_DEFRAG", "struct bpf_link_create_opts.cgroup"} <= absent
    assert {"struct bpf_link_info.xdp", "BPF_F_REPLACE", "BPF_F_KPROBE_MULTI_RETURN"}.isdisjoint(absent)
    reasons = build_ffi.absence_reasons(absent, text, build_ffi.header_version(text), config["include_dirs"])
    assert reasons["struct bpf_link_info.tcx"].startswith(f"{headers}/linux/bpf.h has no member tcx")
    cdef = build_ffi.cdef_text(text, absent)
    source = (build_ffi.HEADERS + build_ffi.generated_source(names, absent, reasons, build_ffi.layout_rows(cdef))
              + build_ffi.c_sources())
    res = build_ffi.syntax_check(cdef, "static const char *const bpflink_build_version = \"x\";\n" + source,
                                 config["include_dirs"])
    assert res.returncode == 0, res.stderr[-3000:]
