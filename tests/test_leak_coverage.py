"""Every public link builder (``bpflink.opts``) and every public ``Link`` method has a leak or soak case: a test
that uses it under a leak check (the plugin's ``bpf_no_leaks``, or conftest's check on ``LEAK_CHECKED_MODULES``)
or in the soak. A new builder or method without one fails here until a case is added and named in ``COVERED``.

Checked without running anything: each named test exists, is under a leak check, and its module uses the name.
"""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path

import pytest

import bpflink.opts
from bpflink import Link
from conftest import LEAK_CHECKED_MODULES

pytestmark = pytest.mark.hostonly  # reads the test sources: nothing here depends on the kernel

HERE = Path(__file__).resolve().parent
CONTRACT = "test_link_kinds.py::test_link_contract"
#: modules whose every test is a leak case without saying so: conftest's list, and the soak (fd/RSS growth)
WHOLE_MODULES = {*(f"{m}.py" for m in LEAK_CHECKED_MODULES), "test_soak.py"}

COVERED: dict[str, str] = {
    # builders
    "opts.Cgroup": CONTRACT,
    "opts.Xdp": CONTRACT,
    "opts.Tcx": CONTRACT,
    "opts.Netkit": CONTRACT,
    "opts.Netfilter": CONTRACT,
    "opts.Iter": "test_iter.py::test_task_iterator_pid_filter_yields_only_that_process",
    "opts.Freplace": "test_freplace.py::test_freplace_opts_name_target_and_function",
    "opts.KprobeMulti": "test_hardening.py::test_built_opts_outlive_their_builder_only_through_ptr",
    "opts.UprobeMulti": "test_hardening.py::test_builder_arrays_reach_the_struct_and_big_endian_is_refused",
    "opts.PerfEvent": "test_hardening.py::test_builders_fill_the_value_they_validated",
    "opts.Tracing": "test_probe.py::test_trampoline_verdict_matches_a_real_link_that_fires",
    # Link
    "Link.attach_type": "test_hardening.py::test_attach_type_is_read_only",
    "Link.close": CONTRACT,
    "Link.closed": CONTRACT,
    "Link.detach": CONTRACT,
    "Link.detach_fd": CONTRACT,
    "Link.ensure": "test_lifecycle.py::test_ensure_creates_keeps_and_swaps",
    "Link.fd": CONTRACT,
    "Link.fileno": CONTRACT,
    "Link.from_id": CONTRACT,
    "Link.from_pin": CONTRACT,
    "Link.id": CONTRACT,
    "Link.info": CONTRACT,
    "Link.kind": "test_attach.py::test_legacy_tracepoint_and_uprobe_fire_through_the_perf_event_ioctl",
    "Link.legacy": "test_attach.py::test_legacy_tracepoint_and_uprobe_fire_through_the_perf_event_ioctl",
    "Link.open_iter": "test_iter.py::test_task_iterator_lists_this_process",
    "Link.owners": "test_owners.py::test_owners_finds_the_child_and_the_pin",
    "Link.perf_event": "test_attach.py::test_legacy_tracepoint_and_uprobe_fire_through_the_perf_event_ioctl",
    "Link.pin": CONTRACT,
    "Link.pinned_path": CONTRACT,
    "Link.prog_id": CONTRACT,
    "Link.read_iter": "test_iter.py::test_task_iterator_lists_this_process",
    "Link.unpin": CONTRACT,
    "Link.update": CONTRACT,
    "Link.update_map": CONTRACT,
}


def public_api() -> set[str]:
    builders = {f"opts.{name}" for name, obj in vars(bpflink.opts).items()
                if inspect.isclass(obj) and issubclass(obj, bpflink.opts.LinkOpts) and obj is not bpflink.opts.LinkOpts
                and not name.startswith("_")}
    methods = {f"Link.{name}" for name in dir(Link) if not name.startswith("_")}
    return builders | methods


@cache
def _module(name: str) -> tuple[str, ast.Module]:
    text = (HERE / name).read_text()
    return text, ast.parse(text)


def leak_case(node_id: str) -> str | None:
    """Why ``node_id`` is not a leak case (None when it is)."""
    file, _, func = node_id.partition("::")
    if not (HERE / file).exists():
        return f"{file} does not exist"
    _, tree = _module(file)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func), None)
    if fn is None:
        return f"{node_id} does not exist"
    if file in WHOLE_MODULES:
        return None
    args = {a.arg for a in fn.args.args}
    marks = ast.unparse(fn.decorator_list) if fn.decorator_list else ""  # type: ignore[arg-type]
    if "bpf_no_leaks" in args or "bpf_no_leaks" in marks:
        return None
    return f"{node_id} runs under no leak check (add the bpf_no_leaks fixture)"


def test_every_public_builder_and_link_method_has_a_leak_case() -> None:
    api = public_api()
    missing = sorted(api - set(COVERED))
    assert not missing, f"public names with no leak/soak case in COVERED: {missing}"
    stale = sorted(set(COVERED) - api)
    assert not stale, f"COVERED names what is no longer public: {stale}"


@pytest.mark.parametrize("name", sorted(COVERED))
def test_the_named_case_is_a_leak_case_using_it(name: str) -> None:
    node_id = COVERED[name]
    problem = leak_case(node_id)
    assert problem is None, problem
    attr = name.split(".", 1)[1]
    text, _ = _module(node_id.partition("::")[0])
    assert attr in text, f"{node_id}: its module never mentions {attr}"
