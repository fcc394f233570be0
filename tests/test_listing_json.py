"""``bpflink list --json`` formatted in C (include/linkjson.c): the same text as the Python writer, byte for byte,
for every link kind made here, through batch boundaries, buffer growth and the hand-over to Python."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create, lowlevel
from conftest import open_fds
from privnet import PrivateNetns
from test_info import entry_file_offset, perf_event_open_tracepoint

EGRESS = AttachType.CGROUP_INET_EGRESS
ffi = lowlevel.ffi
# control characters, JSON's own escapes, DEL, 2/3/4-byte UTF-8, and ill-formed sequences: lone continuation,
# truncated, overlong, surrogate, above U+10FFFF
ODD = (b"odd-\x01\x1f\"\\\t\n\r\x08\x0c\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xc3|\xe2\x82|\xc0\xaf|"
       b"\xe0\x80\x80|\xed\xa0\x80|\xf4\x90\x80\x80|\xf0\x9f\x98|\xff\xfe|end")


def python_string(data: bytes) -> str:
    from _json import encode_basestring_ascii

    return str(encode_basestring_ascii(ffi.string(ffi.new("char[]", data)).decode(errors="replace")))


@pytest.mark.hostonly
def test_json_string_matches_python_for_odd_bytes() -> None:
    from bpflink._rawinfo import json_string

    samples = [b"", b"plain", ODD, bytes(range(1, 256)), b"stops\x00here", "\u00e9\u4e2d\U0001f600".encode()]
    leads, seconds = (0xC2, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5), (0x7F, 0x80, 0x90, 0x9F, 0xA0, 0xBF, 0xC0)
    samples += [bytes([a, b, c, d]) for a in leads for b in seconds for c in (0x80, 0x41) for d in (0x80, 0xBF)]
    rng = random.Random(20)
    alphabet = bytes([0, 1, 0x1F, 0x20, 0x22, 0x5C, 0x7E, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED,
                      0xEF, 0xF0, 0xF4, 0xF5, 0xFF]) + b"ab"
    samples += [bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    samples += [rng.randbytes(rng.randrange(1, 64)) for _ in range(2000)]
    for data in samples:
        assert json_string(data) == python_string(data), data


@pytest.mark.hostonly
def test_u64s_text_equals_the_python_writer_for_a_list() -> None:
    """show --json writes offsets/addresses/cookies from their C buffer (bpflink_json_u64s): the same text the
    Python writer prints for the list of ints, at any depth; the table view shows the same first four."""
    from bpflink._rawinfo import Ints, U64s
    from bpflink.cli import _json, _value

    rng = random.Random(20)
    for n in (0, 1, 2, 4, 5, 1000):
        values = [rng.choice((0, 1, 9, 10, (1 << 64) - 1, rng.getrandbits(64), rng.getrandbits(12))) for _ in range(n)]
        buf = ffi.new("__u64[]", values) if n else None
        raw = U64s(buf, n)
        assert (len(raw), raw.ints(), raw.head(4)) == (n, values, values[:4])
        for indent in ("", "  ", "    "):
            assert raw.json(indent) == _json(Ints(values), indent) == _json(values, indent)
        assert _json({"id": 1, "offsets": raw, "n": n}) == _json({"id": 1, "offsets": values, "n": n})
        assert _value(raw.head(4), len(raw)) == _value(values)


def c_text(names: list[object] | None = None) -> str:
    from bpflink._rawinfo import json_list
    from bpflink.cli import _list_item_python

    return "".join(json_list(_list_item_python, names))


def element_of(text: str, want: dict[str, Any]) -> str:
    from bpflink.cli import _json

    element = _json(want, "  ")
    assert ("\n  " + element + ",\n") in text or ("\n  " + element + "\n]\n") in text, element
    return element


def _in_this_netns(prog: Program, at: AttachType) -> Link:
    with open("/proc/thread-self/ns/net") as ns_file:
        return link_create(prog, ns_file.fileno(), at)


@contextmanager
def many_kinds(tmp_path: Path, cgroup: Path, offsets: int = 1) -> Iterator[list[Link]]:
    """Links of every kind this host can make (cgroup attached and detached, perf_event tracepoint, uprobe_multi
    on a file whose name holds odd bytes, xdp, tcx, netns sk_lookup, netfilter, iter)."""
    made: list[Link] = []
    with ExitStack() as stack:
        stack.callback(lambda: [link.close() for link in made])
        counter = stack.enter_context(Map.array())
        skb = stack.enter_context(Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS))
        made.append(link_create(skb, cgroup, EGRESS))
        detached = link_create(skb, cgroup, AttachType.CGROUP_INET_INGRESS)
        detached.detach()
        made.append(detached)
        pfd = perf_event_open_tracepoint("syscalls", "sys_enter_getppid")
        stack.callback(os.close, pfd)
        tp = stack.enter_context(Program.load(ProgType.TRACEPOINT, asm.count_and_return(counter.fd, 0)))
        opts = lowlevel.new_link_create_opts()
        opts.perf_event.bpf_cookie = 7
        made.append(link_create(tp, pfd, AttachType.PERF_EVENT, opts))
        if bpflink.supports(AttachType.TRACE_UPROBE_MULTI):
            up = stack.enter_context(Program.load(ProgType.KPROBE, asm.return_imm(0),
                                                  expected_attach_type=AttachType.TRACE_UPROBE_MULTI))
            exe = os.path.join(os.fsencode(tmp_path), ODD)
            shutil.copy("/bin/true", exe)
            entry = entry_file_offset(Path(os.fsdecode(exe)))
            path = ffi.new("char[]", exe)
            offs = ffi.new("unsigned long[]", [entry] * offsets)
            cookies = ffi.new("__u64[]", [2**64 - 1 - i for i in range(offsets)])
            opts = lowlevel.new_link_create_opts()
            um = opts.uprobe_multi
            um.path, um.offsets, um.cookies, um.cnt = path, offs, cookies, offsets
            made.append(link_create(up, None, AttachType.TRACE_UPROBE_MULTI, opts))
        ns = stack.enter_context(PrivateNetns("ljson"))
        ifindex = ns.ifindex("veth1")
        xdp = stack.enter_context(Program.load(ProgType.XDP, asm.return_imm(2), expected_attach_type=AttachType.XDP))
        made.append(ns.call(link_create, xdp, ifindex, AttachType.XDP))
        if bpflink.supports(AttachType.TCX_INGRESS):
            cls = stack.enter_context(Program.load(ProgType.SCHED_CLS, asm.return_imm(0),
                                                   expected_attach_type=AttachType.TCX_INGRESS))
            made.append(ns.call(link_create, cls, ifindex, AttachType.TCX_INGRESS))
        skl = stack.enter_context(Program.load(ProgType.SK_LOOKUP, asm.return_imm(1),
                                               expected_attach_type=AttachType.SK_LOOKUP))
        made.append(ns.call(_in_this_netns, skl, AttachType.SK_LOOKUP))
        if bpflink.supports(AttachType.NETFILTER):
            nf = stack.enter_context(Program.load(ProgType.NETFILTER, asm.return_imm(1),
                                                  expected_attach_type=AttachType.NETFILTER))
            opts = lowlevel.new_link_create_opts()
            opts.netfilter.pf, opts.netfilter.hooknum, opts.netfilter.priority = 2, 3, -7
            made.append(ns.call(link_create, nf, None, AttachType.NETFILTER, opts))
        yield made


def test_c_list_text_equals_the_python_writer_for_every_kind(tmp_path: Path, cgroup: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from bpflink import _rawinfo
    from bpflink._rawinfo import _PERF, ATTACH_NAMES, LINK_NAMES, json_names, link_dict

    with many_kinds(tmp_path, cgroup, offsets=300) as made:
        kinds = {link.info().to_dict()["type"] for link in made}
        assert {"cgroup", "perf_event", "xdp", "netns"} <= kinds
        before = open_fds()
        wants = [link.info().to_dict() for link in made]
        assert [link_dict(link.fd) for link in made] == wants
        text = c_text()
        assert json.loads(text) is not None
        for want in wants:
            element_of(text, want)
        # small buffers: many batches, and the 300-offset uprobe_multi link outgrows one (the buffer grows for it)
        monkeypatch.setattr(_rawinfo, "_JSON_BUFFER", 1200)
        small = c_text()
        for want in wants:
            element_of(small, want)
        monkeypatch.undo()
        # link types the C side is told no name for go through the Python path, in the same list
        for gone in ("perf_event", "cgroup", "uprobe_multi"):
            table = {v: n for v, n in LINK_NAMES.items() if n != gone}
            handed = c_text(json_names(ATTACH_NAMES, table, _PERF))
            json.loads(handed)
            for want in wants:
                element_of(handed, want)
        assert open_fds() == before
        # and the command line prints it
        res = subprocess.run([sys.executable, "-m", "bpflink", "list", "--json"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        listed = {d["id"]: d for d in json.loads(res.stdout)}
        for want in wants:
            assert listed[want["id"]] == want
        if "uprobe_multi" in kinds:
            up = next(w for w in wants if w["type"] == "uprobe_multi")
            # the kernel's bytes, decoded with replacement as the Python path does
            assert up["path"].endswith(ODD.decode(errors="replace")) and len(up["offsets"]) == 300


@pytest.mark.hostonly
def test_every_link_handed_over_and_skipped_gives_the_empty_list() -> None:
    """With no link the C walk prints what the Python writer prints for an empty list; the writer's lead and
    end markers are the Python writer's."""
    from bpflink._rawinfo import json_list, json_names

    no_names = json_names({}, {}, {})
    seen: list[int] = []

    def pending(info: Any, fd: int) -> str | None:
        seen.append(int(info.id))
        return None  # skipped: as if every link vanished

    assert "".join(json_list(pending, no_names)) == "[]\n"
    assert len(seen) == len(set(seen))



def test_links_decodes_every_kind_as_info_does_and_leaks_no_fd(tmp_path: Path, cgroup: Path) -> None:
    """``links()`` reads the fixed-size types from the batch buffer with struct layouts of its own: every kind
    made here must equal ``Link.info()`` (class, fields, enums), and stopping early leaks no fd."""
    with many_kinds(tmp_path, cgroup, offsets=3) as made:
        want = {link.id: link.info() for link in made}
        before = open_fds()
        got = {info.id: info for info in bpflink.links() if info.id in want}
        assert open_fds() == before
        assert got == want
        assert {i: type(v) for i, v in got.items()} == {i: type(v) for i, v in want.items()}
        assert {i: repr(v) for i, v in got.items()} == {i: repr(v) for i, v in want.items()}
        ingress = next(v for v in got.values() if getattr(v, "attach_type", None) == AttachType.CGROUP_INET_INGRESS)
        assert ingress.attach_type is AttachType.CGROUP_INET_INGRESS  # type: ignore[attr-defined]
        for stop in (1, 2, len(made)):
            gen = bpflink.links()
            for _ in range(stop):
                next(gen)
            gen.close()
            assert open_fds() == before


def test_c_names_odd_type_names_as_python_would(tmp_path: Path, cgroup: Path) -> None:
    """The names the C side prints come from Python's tables: odd ones (control characters, quotes, non-BMP
    characters) are escaped as the Python writer escapes them, and their length counts in each link's bound."""
    from bpflink._rawinfo import _PERF, ATTACH_NAMES, LINK_NAMES, json_names
    from bpflink.cli import _json

    def odd(table: dict[int, str], tag: str) -> dict[int, str]:
        return {v: f"{tag}\x01{n}\"\\\u00e9\U0001f600\x7f" + "x" * (v % 7) * 40 for v, n in table.items()}

    links_, attach, perf = odd(LINK_NAMES, "L"), odd(ATTACH_NAMES, "A"), odd(_PERF, "P")
    by_name = [{n: v for v, n in t.items()} for t in (LINK_NAMES, ATTACH_NAMES, _PERF)]
    with many_kinds(tmp_path, cgroup) as made:
        text = c_text(json_names(attach, links_, perf))
        for link in made:
            want = link.info().to_dict()
            renamed = dict(want)
            for key, table, names in (("type", links_, by_name[0]), ("attach_type", attach, by_name[1]),
                                      ("perf_type", perf, by_name[2])):
                if isinstance(want.get(key), str) and want[key] in names:
                    renamed[key] = table[names[want[key]]]
            if renamed == want:
                continue
            element = _json(renamed, "  ")
            assert ("\n  " + element + ",\n") in text or ("\n  " + element + "\n]\n") in text, element
