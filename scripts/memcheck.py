"""scripts/test-memcheck's Python half: a pytest plugin and the verdict over valgrind's XML reports.

As a plugin (``-p memcheck`` with scripts/ on PYTHONPATH, inside the valgrind'ed pytest): as each test starts,
the size of this process's report is noted in ``$BPFLINK_MEMCHECK_DIR/tests.<pid>.log``, so the verdict can name
the test that was running when a report was written (leaks are found at exit).

As a script (``python scripts/memcheck.py DIR PYTEST_RC SECONDS``): read every ``DIR/vg.*.xml``; reports that
valgrind.supp suppressed or that are explained below are counted, every other one is printed with its stack and
the test that was running; exit 1 on any unexplained report or a pytest failure.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def pytest_runtest_logstart(nodeid: str) -> None:
    out = os.environ["BPFLINK_MEMCHECK_DIR"]
    try:
        size = os.path.getsize(f"{out}/vg.{os.getpid()}.xml")
    except OSError:
        return
    with open(f"{out}/tests.{os.getpid()}.log", "a") as f:
        f.write(f"{size} {nodeid}\n")


# Undefined values born where valgrind.supp's note says they are harmless (matched on --track-origins' stack):
# the digit CPython 3.11 never writes for the int 0, and the verifier log the kernel wrote in a failed PROG_LOAD.
EXPLAINED_ORIGINS = {("malloc", "_PyLong_New"): "CPython 3.11 zero-int digit",
                     ("malloc", "bpf_object__load"): "verifier log of a refused load (libbpf's buffer)",
                     ("malloc", "btf_get_from_fd"): "BTF the kernel wrote behind bpf_btf_info.btf"}
MINE = ("_ffi.abi3.so", "_fdowner.abi3.so")  # bpflink's extensions; libbpf is linked into _ffi (bpf_/libbpf_ frames)

# One place where memcheck records no origin at all for the same zero-int pointer: list.sort of ints parsed
# from text, one being int("0") (test_iter's cgroup levels, "2 1 0"). A three-line pure-Python script
# (text = "100 2\n101 1\n102 0"; rows = [(int(a), int(b)) ...]; sorted(levels)) gives these very three
# origin-less reports (Py_TYPE/Py_SIZE in list_sort_impl, unsafe_long_compare), and none when no level is 0.
# Accepted only without an origin: an undefined int from bpflink's or the kernel's memory would carry one.
ORIGINLESS_SORT = {("Py_TYPE", "Py_IS_TYPE", "list_sort_impl"), ("Py_SIZE", "list_sort_impl", "list_sort"),
                   ("Py_SIZE", "unsafe_long_compare", "count_run")}

# valgrind 3.19's model of BPF_MAP_GET_NEXT_KEY, checked with a ten-line C program on libbpf alone: it reads
# attr->flags, a field that command does not have (libbpf zeroes and passes the attr only up to next_key), on
# every call, and key_size bytes at attr->key even when the key is NULL, which asks for the first key (uapi).
GET_NEXT_KEY_MODEL = {"Syscall param bpf(attr->flags) points to uninitialised byte(s)",
                      "Syscall param bpf(attr->key) points to unaddressable byte(s)"}


def frames(stack: ET.Element | None) -> list[tuple[str, str]]:
    return [] if stack is None else [(f.findtext("fn") or "?", (f.findtext("obj") or "").rsplit("/", 1)[-1])
                                     for f in stack.iter("frame")]


def explained_origin(err: ET.Element) -> str | None:
    stacks, aux = err.findall("stack"), [a.text or "" for a in err.iter("auxwhat")]
    if err.findtext("kind") == "SyscallParam" and err.findtext("what") in GET_NEXT_KEY_MODEL \
            and [fn for fn, _ in frames(stacks[0])[:2]] == ["syscall", "bpf_map_get_next_key"]:
        return "valgrind's model of BPF_MAP_GET_NEXT_KEY (flags, NULL first key)"
    if (err.findtext("kind") or "").startswith("Uninit") and len(stacks) == 1 and not aux \
            and tuple(fn for fn, _ in frames(stacks[0])[:3]) in ORIGINLESS_SORT:
        return "CPython 3.11 zero-int digit, no origin recorded (list.sort)"
    if len(stacks) < 2 or not any(a.startswith("Uninitialised value was created") for a in aux):
        return None  # not an undefined-value report, or no origin recorded
    origin = frames(stacks[-1])[:2]  # the origin is the last stack
    if len(origin) < 2:
        return None
    return EXPLAINED_ORIGINS.get((origin[0][0], origin[1][0]))


def running_test(path: str, offset: int) -> str:
    """The test that had started last when the report at ``offset`` of ``path`` was written (see the plugin)."""
    try:
        with open(path.replace("/vg.", "/tests.")[:-4] + ".log") as f:
            marks = [line.split(" ", 1) for line in f]
    except OSError:
        return "?"
    started = [name.strip() for size, name in marks if int(size) <= offset]
    return started[-1] if started else "before the first test"


def verdict(out: str, pytest_rc: int, seconds: str) -> int:
    bad: list[str] = []
    explained: collections.Counter[str] = collections.Counter()
    suppressed: collections.Counter[str] = collections.Counter()
    procs = complete = 0
    for path in sorted(glob.glob(f"{out}/vg.*.xml")):
        with open(path, errors="replace") as f:
            text = f.read()
        procs += 1
        # a forked child that exec'd an untraced program leaves only a header: read error blocks, not documents
        if "</valgrindoutput>" in text:
            complete += 1
            for pair in ET.fromstring(text).iter("pair"):
                name = pair.findtext("name")
                if name:
                    suppressed[name] += int(pair.findtext("count") or 0)
        for match in re.finditer(r"<error>.*?</error>", text, re.S):
            err = ET.fromstring(match.group())
            why = explained_origin(err)
            if why:
                explained[why] += 1
                continue
            fr = frames(err.find("stack"))
            ours = any(obj in MINE or fn.startswith(("bpf_", "libbpf_", "bpflink_")) for fn, obj in fr)
            what = err.findtext("what") or err.findtext("xwhat/text") or ""
            where = "bpflink/libbpf" if ours else "elsewhere"
            kind = err.findtext("kind") or ""
            when = "at exit" if kind.startswith("Leak") else f"during {running_test(path, match.start())}"
            bad.append(f"[{where}] {kind}: {what} ({path}, {when})\n    "
                       + "\n    ".join(f"{fn} ({obj})" for fn, obj in fr[:14]))
    try:
        with open(f"{out}/stderr") as f:
            unhandled = collections.Counter(re.findall(r"unhandled eBPF command (\d+)", f.read()))
    except OSError:
        unhandled = collections.Counter()
    for b in bad:
        print(b)
    print(f"memcheck: {len(bad)} unexplained reports; explained by origin: {dict(explained) or 'none'}; "
          f"suppressed by scripts/valgrind.supp: {dict(suppressed) or 'none'}")
    commands = ", ".join(f"{c} ({n}x)" for c, n in sorted(unhandled.items(), key=lambda x: int(x[0])))
    print(f"memcheck: {procs} processes ({complete} ran to exit), {seconds} s, pytest exit {pytest_rc}; bpf() "
          f"commands valgrind does not model: {commands}; reports in {out}")
    return 1 if bad or pytest_rc else 0


if __name__ == "__main__":
    sys.exit(verdict(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
