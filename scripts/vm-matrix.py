#!/usr/bin/env python3
"""Build the attach family x kernel table from the junit files scripts/vmtest writes.

    python3 scripts/vm-matrix.py build/vm/results docs/kernel-matrix.md [KERNEL...]

Reads ``<results>/<name>/junit.xml`` (plus ``seconds`` and ``rc``) for ``host`` and each kernel, writes the
markdown table to the output file and prints it, and puts a compact copy (one short verdict per cell) into the
README beside the output's folder, between its ``<!-- kernel-matrix:begin -->`` / ``end`` markers. A test's
family is the first attach-family word in its name (``test_fentry_counts`` -> fentry), else its module
(``test_netkit.py`` -> netkit). The family words are the names and aliases of the ``Family`` records in
``src/bpflink/families/``, read from their source with ``ast``: standard library only, CI runs it before any
venv (and so any compiled bpflink) exists.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

FAMILY_DIR = Path(__file__).resolve().parent.parent / "src" / "bpflink" / "families"
# words in test names that name an attach path rather than a link family (perf-event and raw_tp attachments)
ATTACH_WORDS = ("tracepoint", "kprobe", "uprobe", "raw_tp")


def record_words(folder: Path = FAMILY_DIR) -> set[str]:
    """The ``name=`` and the ``aliases=`` keys of every ``Family(...)`` in the family modules."""
    words: set[str] = set()
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Family"):
                continue
            for kw in node.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                    words.add(str(kw.value.value))
                elif kw.arg == "aliases" and isinstance(kw.value, ast.Dict):
                    words.update(str(k.value) for k in kw.value.keys if isinstance(k, ast.Constant))
    words.discard("other")
    return words


# longest first, so kprobe_multi wins over kprobe
FAMILIES = sorted(record_words() | set(ATTACH_WORDS), key=lambda w: (-len(w), w))


def family(classname: str, name: str) -> str:
    module = classname.rsplit(".", 1)[-1].removeprefix("test_")
    module = {"core": "core (cgroup links)"}.get(module, module)
    text = "_" + re.sub(r"\[.*", "", name).removeprefix("test_") + "_"
    for fam in FAMILIES:
        if f"_{fam}_" in text:
            return fam
    return module


def outcome(case: ET.Element) -> tuple[str, str]:
    for tag, kind in (("failure", "fail"), ("error", "fail"), ("skipped", "skip")):
        el = case.find(tag)
        if el is not None:
            msg = el.get("message") or ""
            # pytest prefixes skip messages with the location: keep the reason
            return kind, re.sub(r"^(Skipped: )", "", msg).strip()
    return "pass", ""


def load(results: Path, name: str) -> tuple[str, dict[str, list[tuple[str, str, str]]], str]:
    """(column title, family -> [(test, outcome, message)], wall time) for one results dir."""
    junit = results / name / "junit.xml"
    seconds = (results / name / "seconds").read_text().strip() if (results / name / "seconds").exists() else "?"
    rc = (results / name / "rc").read_text().strip() if (results / name / "rc").exists() else "?"
    rows: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    if not junit.exists():
        return f"{name} (no results, exit {rc})", rows, seconds
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    release = suite.get("name", "") if suite is not None else ""
    for case in root.iter("testcase"):
        kind, msg = outcome(case)
        rows[family(case.get("classname", ""), case.get("name", ""))].append((case.get("name", ""), kind, msg))
    title = f"{name} ({release})" if release and release != "pytest" else name
    return title, rows, seconds


def skip_reasons(skips: list[tuple[str, str, str]], most: int = 2) -> dict[str, str]:
    """The first ``most`` distinct skip reasons, {short form: one full reason}: the short form (the README's)
    drops "not available here" and the kernel's errno, so reasons differing only in the errno count once, and
    both tables name the same reasons in the same order."""
    found: dict[str, str] = {}
    for reason in sorted({c[2] for c in skips}):
        found.setdefault(re.sub(r" \(kernel answered .*", "", reason).replace(" not available here", ""), reason)
    return {k: found[k] for k in sorted(found)[:most]}


def cell(cases: list[tuple[str, str, str]]) -> str:
    if not cases:
        return "not run"
    n = len(cases)
    fails = [c for c in cases if c[1] == "fail"]
    skips = [c for c in cases if c[1] == "skip"]
    passed = n - len(fails) - len(skips)
    if fails:
        return f"**FAIL** {len(fails)}/{n}: " + ", ".join(sorted({c[0] for c in fails}))[:120]
    why = "; ".join(r[:110] for r in skip_reasons(skips).values()).replace("|", "/")
    if not passed:
        return f"skipped ({n}): {why}"
    if skips:
        return f"pass {passed}/{n}, skipped {len(skips)}: {why}"
    return f"pass {passed}/{n}"


def short(cases: list[tuple[str, str, str]]) -> str:
    """The README's cell: pass, or what is skipped and why in a few words, or the failures' count."""
    if not cases:
        return "not run"
    n = len(cases)
    fails = [c for c in cases if c[1] == "fail"]
    skips = [c for c in cases if c[1] == "skip"]
    if fails:
        return f"**FAIL** {len(fails)}/{n}"
    if not skips:
        return f"pass {n}/{n}"
    text = "; ".join(w[:80] for w in skip_reasons(skips)).replace("|", "/")
    return f"skip: {text}" if len(skips) == n else f"pass {n - len(skips)}/{n}, skip {len(skips)}: {text}"


def update_readme(readme: Path, cols: list[tuple[str, dict[str, list[tuple[str, str, str]]], str]],
                  families: list[str]) -> None:
    begin, end = "<!-- kernel-matrix:begin -->", "<!-- kernel-matrix:end -->"
    if not readme.exists():
        return
    text = readme.read_text()
    if begin not in text or end not in text:
        return
    rows = ["| family | " + " | ".join(title.split(" (")[0] for title, _, _ in cols) + " |",
            "|---" * (len(cols) + 1) + "|"]
    rows += [f"| {fam} | " + " | ".join(short(r.get(fam, [])) for _, r, _ in cols) + " |" for fam in families]
    head, rest = text.split(begin, 1)
    readme.write_text(head + begin + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1])


def main(argv: list[str]) -> int:
    results, out = Path(argv[1]), Path(argv[2])
    given = argv[3:] or [p.name for p in results.iterdir() if p.is_dir() and p.name != "host"]
    # columns oldest kernel first, whatever order the guests ran in
    names = ["host", *sorted(given, key=lambda n: [int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", n)])]
    cols = [load(results, n) for n in names]
    families = sorted({f for _, rows, _ in cols for f in rows})
    lines = [
        "# Kernel matrix",
        "",
        "Generated by `scripts/vmtest --matrix` (QEMU, Debian kernels pinned in `scripts/vm-kernels.txt`) from the",
        "junit results of the guest test selection; do not edit by hand. Cells: passed/total tests of that family,",
        "skips with the probed reason (`tests/honest_skips.py unsupported()`), failures with the test names.",
        "",
        "| family | " + " | ".join(title for title, _, _ in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for fam in families:
        lines.append(f"| {fam} | " + " | ".join(cell(rows.get(fam, [])) for _, rows, _ in cols) + " |")
    lines.append("| *wall time (s)* | " + " | ".join(s for _, _, s in cols) + " |")
    jobs = (results / "jobs").read_text().strip() if (results / "jobs").exists() else "1"
    beside = (results / "beside").read_text().strip() if (results / "beside").exists() else ""
    lines += ["", f"Wall time: boot + pytest per kernel, {jobs} guest(s) at a time on a {os.cpu_count()}-CPU host"
              + (f", at idle priority while `{beside}` ran on the host." if beside else ".")]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    update_readme(out.resolve().parent.parent / "README.md", cols, families)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
