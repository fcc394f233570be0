"""The documentation: the Sphinx site builds with warnings as errors and documents every public name, the
tutorial runs exactly as written (its code blocks are extracted and executed in order, its printed numbers
checked), and every docstring example of the package runs (those that need a kernel object are marked
``# doctest: +SKIP``)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bpflink
from conftest import python_sources

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HTML = ROOT / "build" / "docs-html"  # scripts/test builds here (after mypy); reused when newer than the sources


def _newest_source() -> float:
    files = [*DOCS.rglob("*"), *python_sources(ROOT / "src" / "bpflink"), ROOT / "README.md",
             ROOT / "CHANGELOG.md", ROOT / "THIRD_PARTY_NOTICES.md", ROOT / "bench" / "README.md"]
    return max(f.stat().st_mtime for f in files if f.is_file())


def build_docs(out: Path) -> subprocess.CompletedProcess[str]:
    """The same command as scripts/test: fresh environment (-E), warnings are errors (-W), all reported."""
    return subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(out / ".doctrees"), str(DOCS), str(out)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def html() -> Path:
    inv = HTML / "objects.inv"
    if not inv.exists() or inv.stat().st_mtime < _newest_source():
        res = build_docs(HTML)
        assert res.returncode == 0, res.stdout + res.stderr
    return HTML


def _public_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bpflink.__path__, "bpflink.")
                  if not m.name.rsplit(".", 1)[1].startswith("_") and m.name != "bpflink.__main__")


@pytest.mark.hostonly
def test_api_reference_covers_every_public_name(html: Path) -> None:
    """bpflink.__all__ under bpflink.NAME; every other module's __all__ under its module or re-exported."""
    from sphinx.util.inventory import InventoryFile

    with open(html / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for kind, entries in inv.items() if kind.startswith("py:") for name in entries}
    missing = [f"bpflink.{n}" for n in bpflink.__all__ if f"bpflink.{n}" not in documented
               and not isinstance(getattr(bpflink, n), type(sys)) and n != "__version__"]
    top = set(bpflink.__all__)
    for modname in _public_modules():
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", ()):
            if f"{modname}.{name}" not in documented and not (name in top and f"bpflink.{name}" in documented):
                missing.append(f"{modname}.{name}")
    assert missing == [], f"not in the API reference (add to docs/api/): {missing}"
    pages = {p.name for p in html.glob("*.html")}
    assert {"tutorial.html", "families.html", "kernel-matrix.html", "security.html", "architecture.html",
            "reliability.html", "benchmarks.html", "testing.html"} <= pages
    families = (html / "families.html").read_text()
    assert "kprobe_multi" in families and "opts.UprobeMulti" in families  # the README's table, included
    assert "pass 26/26" in (html / "kernel-matrix.html").read_text()


# --- the tutorial -------------------------------------------------------------------------------------------------

BLOCK = re.compile(r"^```(\{code-block\} *)?(\w+)\n((?::\w+: [^\n]*\n)*)\n?(.*?)^```\n", re.M | re.S)


def tutorial_blocks(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(language, options, body) of each fenced block of a MyST page, in order."""
    out = []
    for m in BLOCK.finditer(text):
        opts = dict(re.findall(r"^:(\w+): ([^\n]*)$", m.group(3), re.M))
        out.append((m.group(2), opts, m.group(4)))
    return out


@pytest.mark.hostonly  # cgroup links on every kernel the guests run are test_core's; this checks the text
def test_tutorial_runs_as_written(cgroup: Path, tmp_path: Path) -> None:
    """Each block of docs/tutorial.md in order: C and Python blocks written to their caption's file name, sh
    blocks run by bash in that directory, pycon blocks run as one doctest session there (their outputs are
    checked; the last one runs the tutorial's pytest file in a child pytest with the plugin)."""
    blocks = tutorial_blocks((DOCS / "tutorial.md").read_text())
    assert [lang for lang, _, _ in blocks][:3] == ["c", "sh", "pycon"], blocks
    env = {**os.environ, "BPFLINK_CGROUP2": str(cgroup)}  # the tutorial's cgroup goes below a fresh one
    parser, globs = doctest.DocTestParser(), {"__name__": "tutorial"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    os.chdir(tmp_path)
    os.environ.update(env)
    try:
        for n, (lang, opts, body) in enumerate(blocks):
            if lang in ("c", "python"):
                (tmp_path / opts["caption"]).write_text(body)
            elif lang == "sh":
                res = subprocess.run(["bash", "-euo", "pipefail", "-c", body], capture_output=True, text=True,
                                     timeout=120)
                assert res.returncode == 0, f"block {n} ({body.strip()}):\n{res.stderr}"
            elif lang == "pycon":
                test = parser.get_doctest(body, globs, f"tutorial block {n}", str(DOCS / "tutorial.md"), 0)
                test.globs = globs  # one session across blocks (get_doctest copies the dict)
                result = runner.run(test, out=sys.stdout.write, clear_globs=False)
                assert result.failed == 0, f"tutorial block {n} failed (output above)"
            else:
                pytest.fail(f"block {n}: no runner for language {lang!r}")
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        for owner in ("link", "rb", "events", "bytes_sent", "sizes", "obj"):  # no link left on the cgroup
            if owner in globs:
                globs[owner].close()
        leftover = cgroup / "bpflink-tutorial"
        if leftover.exists():
            leftover.rmdir()
    assert runner.tries >= 30  # every pycon example ran
    assert [lang for lang, _, _ in blocks].count("python") == 1  # the pytest file, run by the last pycon block


# --- docstring examples --------------------------------------------------------------------------------------------


def _all_modules() -> list[str]:
    """Every module of the package, private ones and subpackages' included (their docstrings are read too)."""
    return ["bpflink", *sorted(m.name for m in pkgutil.walk_packages(bpflink.__path__, "bpflink.")
                               if not m.name.endswith("__main__"))]


@pytest.mark.hostonly
def test_docstring_examples_run() -> None:
    """Every ``>>>`` example in the package, as root on this kernel: run, or marked +SKIP with a reason."""
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for name in _all_modules():
        for test in finder.find(importlib.import_module(name), name):
            runner.run(test, out=sys.stdout.write)
    assert runner.failures == 0, "a docstring example failed (output above)"
    assert runner.tries > 20


SKIP_REASON = re.compile(r"^\s*>>> # not run as a doctest: \S")


@pytest.mark.hostonly
def test_every_skipped_docstring_example_says_why() -> None:
    """A ``# doctest: +SKIP`` example (or a run of them) follows a ``>>> # not run as a doctest: REASON`` line
    (what it needs that the doctest runner lacks: a loaded program, a device, another machine's files...); an
    example that runs ends the run. (doctest drops comment-only examples, so the reason is found in the text.)"""
    finder, unexplained, skipped = doctest.DocTestFinder(), [], 0
    for name in _all_modules():
        for test in finder.find(importlib.import_module(name), name):
            reasons = [n for n, line in enumerate((test.docstring or "").splitlines()) if SKIP_REASON.match(line)]
            since, reported = -1, False  # the line of the last example that runs; this run reported
            for ex in test.examples:
                if not ex.options.get(doctest.SKIP):
                    since, reported = ex.lineno, False
                    continue
                skipped += 1
                if not reported and not any(since < n < ex.lineno for n in reasons):
                    unexplained.append(f"{test.filename}:{(test.lineno or 0) + ex.lineno + 1}: "
                                       f"{ex.source.splitlines()[0]}")
                    reported = True  # one report per run
    assert unexplained == [], "add a '>>> # not run as a doctest: REASON' line before:\n" + "\n".join(unexplained)
    assert skipped > 0


# --- the kernel matrix: README's compact table against docs/kernel-matrix.md -----------------------------------------

def _matrix(text: str, begin: str, end: str | None) -> tuple[list[str], dict[str, list[str]]]:
    """(column names, family -> cells) of the first markdown table after ``begin`` (and before ``end``)."""
    part = text.split(begin, 1)[1]
    if end is not None:
        part = part.split(end, 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split(" | ")][1:]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not cells[0].startswith("*"):  # the wall-time row is the long table's only
            rows[cells[0]] = cells[1:]
    return [h.split(" (")[0] for h in head], rows


CELL = re.compile(r"^(?:pass (?P<passed>\d+)/(?P<n>\d+)(?:, (?:skip|skipped) (?P<skipped>\d+): (?P<why>.*))?"
                  r"|(?:skip|skipped \((?P<all>\d+)\)): (?P<allwhy>.*))$")


def _parse_cell(cell: str) -> tuple[tuple[int, int, int], str]:
    """((passed, total, skipped), reason text) of a matrix cell, either table's wording."""
    m = CELL.match(cell)
    assert m, f"not a green cell: {cell!r}"  # failures (**FAIL**), 'not run', 'no results' are not green
    if m["passed"] is not None:
        passed, n, skipped = int(m["passed"]), int(m["n"]), int(m["skipped"] or 0)
        assert passed + skipped == n, f"not a green cell (failures): {cell!r}"
        return (passed, n, skipped), m["why"] or ""
    return (0, int(m["all"]) if m["all"] else -1, int(m["all"]) if m["all"] else -1), m["allwhy"]


@pytest.mark.hostonly
def test_readme_kernel_matrix_agrees_with_docs_kernel_matrix() -> None:
    """Both tables come from one green ``scripts/vmtest --matrix`` run (scripts/vm-matrix.py writes both): the same
    kernels and families, no failure, the same counts per cell, and the README's shortened skip reasons are
    the long table's."""
    readme = (ROOT / "README.md").read_text()
    long_text = (DOCS / "kernel-matrix.md").read_text()
    cols, rows = _matrix(readme, "<!-- kernel-matrix:begin -->", "<!-- kernel-matrix:end -->")
    long_cols, long_rows = _matrix(long_text, "do not edit by hand", None)
    assert cols == long_cols, (cols, long_cols)
    assert cols[0] == "host"
    pinned = [line.split()[0] for line in (ROOT / "scripts" / "vm-kernels.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#") and line.split()[0][0].isdigit()]
    assert set(cols[1:]) <= set(pinned), (cols, pinned)
    assert list(rows) == list(long_rows)
    for fam, cells in rows.items():
        for kernel, short, full in zip(cols, cells, long_rows[fam]):
            (s_counts, s_why), (l_counts, l_why) = _parse_cell(short), _parse_cell(full)
            where = f"{fam} on {kernel}: README {short!r} vs docs {full!r}"
            if s_counts[1] == -1:  # the README's all-skipped cell gives no count
                assert l_counts[0] == 0, where
            else:
                assert s_counts == l_counts, where
            full_why = l_why.replace(" not available here", "")
            for piece in filter(None, (p.strip() for p in s_why.split(";"))):
                # the README cuts each reason at 80 characters, the long table at 110 with 19 more ("not
                # available here"): each README piece is a substring of the long cell
                assert piece in full_why, where


# --- the README's and docs/testing.md's code --------------------------------------------------------------------


def _blocks_after(text: str, marker: str) -> list[tuple[str, dict[str, str], str]]:
    return tutorial_blocks(text.split(marker, 1)[1])


@pytest.mark.hostonly  # perf_event links and maps on every guest kernel are test_perf_event's and test_maps'
def test_readme_from_bpf_o_to_numbers_runs_as_written(tmp_path: Path) -> None:
    """The README's compile line (bash, in a directory whose ``build`` is the checkout's) and its Python block (a
    child interpreter): the counters it prints are live, the by_comm items decoded (comm as bytes)."""
    (sh_lang, _, compile_line), (py_lang, _, code) = _blocks_after((ROOT / "README.md").read_text(),
                                                                   "### From .bpf.o to numbers")[:2]
    assert (sh_lang, py_lang) == ("sh", "python")
    (tmp_path / "counts.bpf.c").write_bytes((ROOT / "tests" / "bpf" / "data_counts.bpf.c").read_bytes())
    (tmp_path / "build").symlink_to(ROOT / "build")
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", compile_line], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    hits, percpu, *items = res.stdout.splitlines()
    assert int(hits) >= 1  # os.getppid() at least, counted for this process only (target_tgid)
    assert int(percpu) >= int(hits)  # read later: the print's own write() counted too
    comms = [re.fullmatch(r"(b'.*') (\d+)", line) for line in items]
    assert comms and all(comms), items
    assert any(m[1].startswith("b'python") and int(m[2]) % 3 == 0 for m in comms if m), items  # scale = 3


@pytest.mark.hostonly  # the plugin on the guest kernels is test_plugin's (the same project in the 6.12 guest)
def test_testing_page_example_project_runs_as_shown(tmp_path: Path) -> None:
    """docs/testing.md's example project is tests/sample_project's files (less its leak test), and ``pytest -ra``
    in it prints what the page shows: on a kernel without kprobe_multi the page's SKIPPED line word for word
    and "2 passed, 1 skipped"; where kprobe_multi works, 3 pass."""
    from bpflink import AttachType, supports

    text = (DOCS / "testing.md").read_text()
    blocks = _blocks_after(text, "## A complete example project")
    files = {"ini": "pytest.ini", "c": "counter.bpf.c", "python": "test_counter.py"}
    for lang, name in files.items():
        body = next(b for lg, _, b in blocks if lg == lang)
        assert body == (ROOT / "tests" / "sample_project" / name).read_text(), f"docs/testing.md's {name} differs"
        (tmp_path / name).write_text(body)
    shown = next(b for lg, _, b in blocks if lg == "console")
    assert shown.splitlines()[0] == "# pytest -ra"
    res = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    if supports(AttachType.TRACE_KPROBE_MULTI):
        assert re.search(r"^=* 3 passed in ", out, re.M), out
    else:
        skipped = next(line for line in shown.splitlines() if line.startswith("SKIPPED"))
        assert skipped in out.splitlines(), out
        assert "test_counter.py .s." in out and re.search(r"^=* 2 passed, 1 skipped in ", out, re.M), out


# Python blocks that are sketches (they name the reader's files, programs, devices and processes): not run, but
# every bpflink name, attribute and keyword argument in them must exist, checked against the imported package.
SKETCHES: dict[str, dict[int, str]] = {  # page: {block (1-based among its python blocks): the imports it assumes}
    "README.md": {1: "", 3: "", 4: ""},
    "docs/ringbuf.md": {1: ""},
    "docs/usdt.md": {1: ""},
    "docs/operations.md": {1: "from bpflink import Link, AttachType",
                           2: "from bpflink.cli import Args, arg, command, flag, option"},
}


class _SketchChecker:
    """Resolves what a sketch names in bpflink: ``import``s, attribute chains from them, calls (keywords bound
    against the real signature) and methods of variables assigned from a resolved class or annotated call."""

    def __init__(self, where: str) -> None:
        import builtins

        self.where, self.errors = where, []
        self.scope: dict[str, object] = {"bpflink": bpflink, **vars(builtins)}
        self.types: dict[str, type] = {}

    def value(self, node: object) -> object:
        """The Python object an expression names, or None when it is not bpflink's (a placeholder)."""
        import ast

        if isinstance(node, ast.Name):
            return self.scope.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value)
            if base is None and isinstance(node.value, ast.Name) and node.value.id in self.types:
                base = self.types[node.value.id]
            if base is None:
                return None
            if isinstance(base, type) and not hasattr(base, node.attr) and any(
                    node.attr in vars(k).get("__annotations__", {}) or node.attr in vars(k).get("__slots__", ())
                    for k in base.__mro__):
                return None  # an instance attribute the class declares
            if not hasattr(base, node.attr):
                self.errors.append(f"{self.where}: {ast.unparse(node)}: {base!r} has no {node.attr!r}")
                return None
            return getattr(base, node.attr)
        if isinstance(node, ast.Call):
            return self.result_type(node)
        return None

    def result_type(self, call: object) -> type | None:
        import ast
        import inspect

        assert isinstance(call, ast.Call)
        fn = self.value(call.func)
        if fn is None or not callable(fn):
            return None
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        has_star = any(isinstance(a, ast.Starred) for a in call.args)
        kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
        try:
            if has_star:
                sig.bind_partial(**kwargs)
            else:
                sig.bind_partial(*([None] * len(call.args)), **kwargs)
        except TypeError as exc:
            self.errors.append(f"{self.where}: {ast.unparse(call)}: {exc}")
        if isinstance(fn, type):
            return fn
        # annotations are strings (``from __future__ import annotations``), some of TYPE_CHECKING-only names:
        # resolve a plain class name (``Link``, ``Object``) in the function's module, then in bpflink
        ret = getattr(fn, "__annotations__", {}).get("return")
        if isinstance(ret, str):
            name = ret.strip("'\"").removesuffix(" | None")
            module = sys.modules.get(getattr(fn, "__module__", ""), None)
            ret = getattr(module, name, None) or getattr(bpflink, name, None)
        return ret if isinstance(ret, type) and ret.__module__.startswith("bpflink") else None

    def check(self, code: str) -> None:
        import ast

        tree = compile(code, self.where, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for node in ast.walk(tree):  # imports and assignments first, in source order (ast.walk is breadth-first)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bpflink":
                mod = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(mod, alias.name):
                        self.errors.append(f"{self.where}: {node.module} has no {alias.name}")
                    else:
                        self.scope[alias.asname or alias.name] = getattr(mod, alias.name)
        for node in sorted((n for n in ast.walk(tree) if hasattr(n, "lineno")),
                           key=lambda n: (n.lineno, n.col_offset)):  # type: ignore[attr-defined]
            targets: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                targets.append((node.targets[0], node.value))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                targets += [(item.optional_vars, item.context_expr) for item in node.items
                            if item.optional_vars is not None]
            for target, value in targets:
                if isinstance(target, ast.Name) and isinstance(value, ast.Call):
                    typ = self.result_type(value)
                    if typ is not None:
                        self.types[target.id] = typ
            if isinstance(node, (ast.Attribute, ast.Call)) and not isinstance(getattr(node, "ctx", None), ast.Store):
                self.value(node)


def _python_blocks(page: str) -> list[str]:
    return [body for lang, _, body in tutorial_blocks((ROOT / page).read_text()) if lang == "python"]


@pytest.mark.hostonly
@pytest.mark.parametrize("page", sorted(SKETCHES))
def test_sketch_blocks_name_only_what_exists(page: str) -> None:
    blocks = _python_blocks(page)
    errors: list[str] = []
    for n, prelude in SKETCHES[page].items():
        checker = _SketchChecker(f"{page} python block {n}")
        checker.check(prelude + "\n" + blocks[n - 1])
        errors += checker.errors
    assert errors == []
    run_elsewhere = {"README.md": 1, "docs/testing.md": 1}.get(page, 0)  # run by the tests above
    assert len(blocks) == len(SKETCHES[page]) + run_elsewhere, f"{page}: a python block is neither run nor checked"


# docs/attach.md lists signatures (``name(params) -> result``), not runnable code: each keyword listed with a
# default must be a parameter of the real function with that default, and those after ``*`` keyword-only.
SIGNATURE_PAGES = {"docs/attach.md": ("bpflink.Object", "bpflink.attach", "bpflink.targets")}


def _split_params(text: str) -> list[str]:
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    return [p for p in [*out, cur.strip()] if p]


def _listed_signatures(body: str) -> list[tuple[str, str]]:
    """(name, parameter text) per ``name(...) -> ...`` entry; continuation lines joined."""
    joined = re.sub(r"\n[ \t]+(?=\w)", " ", body)
    return re.findall(r"^([A-Za-z_][\w.]*)\((.*?)\) ->", joined, re.M)


@pytest.mark.hostonly
def test_signature_listings_match_the_functions() -> None:
    import inspect

    errors, checked = [], 0
    for page, bases in SIGNATURE_PAGES.items():
        blocks = _python_blocks(page)
        assert len(blocks) == len(bases), f"{page}: a python block is not checked"
        for body, base in zip(blocks, bases):
            owner = importlib.import_module(base) if base.count(".") == 1 and base != "bpflink.Object" \
                else bpflink.Object
            for name, params in _listed_signatures(body):
                parts = name.split(".")
                obj: object = {"obj": bpflink.Object, "group": bpflink.LinkGroup}.get(parts[0]) \
                    or getattr(owner, parts[0], None) or getattr(bpflink, parts[0], None)
                for attr in parts[1:]:
                    obj = getattr(obj, attr, None)
                if obj is None:
                    errors.append(f"{page}: {name} does not exist")
                    continue
                sig = inspect.signature(obj)  # type: ignore[arg-type]
                kw_only = False
                for param in _split_params(params):
                    if param == "*":
                        kw_only = True
                        continue
                    m = re.fullmatch(r"(\w+)=(.+)", param)
                    if not m:
                        continue
                    real = sig.parameters.get(m[1])
                    checked += 1
                    if real is None:
                        errors.append(f"{page}: {name}() has no parameter {m[1]}")
                    elif repr(real.default) != m[2]:
                        errors.append(f"{page}: {name}({m[1]}=...) defaults to {real.default!r}, not {m[2]}")
                    elif kw_only and real.kind is not inspect.Parameter.KEYWORD_ONLY:
                        errors.append(f"{page}: {name}({m[1]}) is not keyword-only")
    assert errors == []
    assert checked > 30


@pytest.mark.hostonly
def test_documented_command_lines_exist() -> None:
    """Every ``bpflink VERB --option`` the README and docs name (inline or in sh blocks) is a verb of the CLI that
    takes that option (its ``--help``)."""
    texts = [(ROOT / "README.md").read_text(), *(p.read_text() for p in sorted(DOCS.glob("*.md")))]
    lines = [m for t in texts for m in re.findall(r"`(?:\.venv/bin/)?(bpflink [^`]*)`", t)]
    lines += [m for t in texts for lang, _, body in tutorial_blocks(t) if lang in ("sh", "console")
              for m in re.findall(r"^(?:# |\$ )?(?:\.venv/bin/)?(bpflink [^#\n]*)", body, re.M)]
    cli = [sys.executable, "-m", "bpflink"]
    helps: dict[str, str] = {}
    checked = 0
    for line in lines:
        words = line.split("--", 1)[0].split() if " -- " in line else line.split()
        verb = " ".join(words[1:3]) if words[1:2] == ["usdt"] else (words[1] if len(words) > 1 else "")
        if not re.fullmatch(r"[a-z]+( [a-z]+)?", verb):  # `bpflink --version`, `bpflink VERB: ...`
            verb = ""
        if verb not in helps:
            res = subprocess.run([*cli, *verb.split(), "--help"], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, f"{line!r}: `bpflink {verb} --help` failed: {res.stderr}"
            helps[verb] = res.stdout
        for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", line.split(" -- ", 1)[0]):
            checked += 1
            assert option in helps[verb], f"{line!r}: `bpflink {verb}` has no {option}"
    assert checked >= 10 and len(helps) >= 8, (checked, sorted(helps))


SH_RUN_ELSEWHERE = ("clang ",)  # the compile lines: run by the tutorial and README tests above
PLACEHOLDERS = {"tests/test_x.py", "DIR", "CMD", "CMD..."}


@pytest.mark.hostonly
def test_shell_blocks_name_existing_scripts_and_options() -> None:
    """Every command of the README's and docs' sh blocks (the long runs: setup, the whole suite, soaks, memcheck,
    QEMU guests) names a script or venv tool that exists, files that exist, and options its script handles."""
    checked = 0
    for page in ["README.md", *sorted(str(p.relative_to(ROOT)) for p in DOCS.glob("*.md"))]:
        for lang, _, body in tutorial_blocks((ROOT / page).read_text()):
            if lang != "sh":
                continue
            for raw in re.sub(r"\\\n\s*", " ", body).splitlines():
                line = raw.split("  #", 1)[0].strip()
                for command in filter(None, (c.strip() for c in line.split("&&"))):
                    if command.startswith(SH_RUN_ELSEWHERE) or command.startswith("bpflink "):
                        continue  # bpflink's verbs: test_documented_command_lines_exist
                    words = [w for w in command.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]
                    exe = ROOT / words[0]
                    where = f"{page}: {command!r}"
                    assert "/" in words[0] and exe.is_file() and os.access(exe, os.X_OK), where
                    for word in words[1:]:
                        if re.fullmatch(r"(tests|docs|scripts|src)/[\w./-]+", word) and word not in PLACEHOLDERS:
                            assert (ROOT / word).exists(), f"{where}: no {word}"
                    if exe.parent.name == "scripts":  # its own options (bin/python, bpflink: their parsers)
                        text = exe.read_text()
                        for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", command.split(" -- ", 1)[0]):
                            assert option in text, f"{where}: {words[0]} does not handle {option}"
                    checked += 1
    assert checked >= 10, checked


@pytest.mark.hostonly
def test_documented_pytest_options_exist() -> None:
    """Every ``--bpf-*`` option and ``bpf_*`` ini name the docs give to pytest is one the plugin registers."""
    import inspect

    from bpflink.testing import plugin

    source = inspect.getsource(plugin)
    texts = [(ROOT / "README.md").read_text(), *(p.read_text() for p in sorted(DOCS.glob("*.md")))]
    options = {o for t in texts for o in re.findall(r"(?<![\w-])(--bpf-[a-z-]+)", t)}
    inis = {i for t in texts for i in re.findall(r"`(bpf_[a-z_]+) = ", t)}
    assert "--bpf-kernel" in options and "--bpf-strict" in options
    missing = [o for o in sorted(options | inis) if f'"{o}"' not in source]
    assert missing == [], f"documented but not registered by bpflink.testing.plugin: {missing}"
