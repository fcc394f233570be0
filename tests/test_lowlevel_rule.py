"""The layering rule: only ``bpflink.lowlevel`` (and ``bpflink._native``, which loads the extension) touch the
compiled extension's ``lib``. Every other module calls ``lowlevel``'s functions, which return what C returns, and
turns negative returns into exceptions through ``bpflink.errors``. Read from the source (AST), no kernel needed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import python_sources

pytestmark = pytest.mark.hostonly

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "bpflink"

#: the modules allowed to touch ``lib``, relative to src/bpflink
OWNERS = {"lowlevel.py", "_native.py"}

#: modules that still call ``lib.*`` directly, each waiting for its owner to switch to the ``lowlevel`` function of
#: the same name (they all exist there). Remove a line when its module is converted: the test below fails on a
#: stale entry, so this list only shrinks.
NOT_YET_CONVERTED: set[str] = set()

_EXTENSION_MODULES = {"_native", "_ffi", "lowlevel"}


def lib_uses(path: Path) -> list[str]:
    """Where ``path`` reaches the extension's ``lib``: ``import ... lib`` from the extension, ``<anything>.lib``,
    or an import of ``_ffi`` itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = (node.module or "").rsplit(".", 1)[-1]
            if module in _EXTENSION_MODULES and any(a.name == "lib" for a in node.names):
                found.append(f"{node.lineno}: from {node.module} import lib")
            if module == "_ffi" or any(a.name == "_ffi" for a in node.names):
                found.append(f"{node.lineno}: imports the extension module _ffi")
        elif isinstance(node, ast.Import) and any(a.name.endswith("._ffi") for a in node.names):
            found.append(f"{node.lineno}: imports the extension module _ffi")
        elif isinstance(node, ast.Attribute) and node.attr == "lib" and isinstance(node.ctx, ast.Load):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def modules() -> dict[str, Path]:
    return {p.relative_to(PACKAGE).as_posix(): p for p in python_sources(PACKAGE)}


def test_only_lowlevel_touches_lib() -> None:
    offenders = {name: uses for name, path in modules().items()
                 if name not in OWNERS | NOT_YET_CONVERTED and (uses := lib_uses(path))}
    assert not offenders, (
        "these modules reach the extension's lib directly; call the bpflink.lowlevel function of the same name "
        f"(add it there if missing) and check its return through bpflink.errors: {offenders}")


def test_allow_list_is_not_stale() -> None:
    present = modules()
    gone = {name for name in NOT_YET_CONVERTED if name not in present}
    clean = {name for name in NOT_YET_CONVERTED - gone if not lib_uses(present[name])}
    assert not gone and not clean, f"drop these from NOT_YET_CONVERTED: missing {gone}, converted {clean}"


def test_lowlevel_mirrors_what_the_allow_listed_modules_call() -> None:
    """Every lib name a not-yet-converted module uses already has its lowlevel replacement."""
    from bpflink import lowlevel as ll

    missing = set()
    for name in NOT_YET_CONVERTED:
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            base = node.value
            on_lib = ((isinstance(base, ast.Name) and base.id in ("lib", "_lib"))
                      or (isinstance(base, ast.Attribute) and base.attr == "lib"))
            if on_lib and not hasattr(ll, node.attr):
                missing.add(f"{name}: {node.attr}")
    assert not missing, f"add these to bpflink.lowlevel: {sorted(missing)}"


def test_the_rule_sees_a_direct_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from ._native import ffi, lib\nfrom . import lowlevel as ll\n"
                      "x = lib.bpf_map_freeze(3)\ny = ll.lib.bpf_obj_get(b'/x')\nz = ll.bpf_map_freeze(3)\n")
    assert [u.split(":")[0] for u in lib_uses(sample)] == ["1", "4"]  # the import, ll.lib; ll.bpf_* is the rule
