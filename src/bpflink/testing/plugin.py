"""bpflink's pytest plugin (entry point ``pytest11: bpflink``): markers, options, fixtures, leak check, and
``--bpf-kernel`` (the selected tests in QEMU guests booting other kernels).

Inert unless used: importing this module imports nothing of bpflink; every fixture and hook imports what it
needs when a test uses it, prints nothing and needs no root for tests that do not use it. Reference:
docs/testing.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from bpflink.object import Object

    from ._cgroup import Cgroup
    from ._netns import Netns, PeerPair

_OWNED_FDS = pytest.StashKey[set[int]]()
_OWNED_PATHS = pytest.StashKey[set[str]]()

MARKERS = (
    "bpf_requires(*names): skip unless the kernel supports every name (attach types, families, features, as "
    "`bpflink probe --require` takes them), with the probed reason; a failure under --bpf-strict when the kernel "
    "is new enough and its config options are on",
    "bpf_no_autoskip: a NotSupportedError raised in the test fails it instead of becoming an honest skip",
    "bpf_allow_leaks: leave this test out of the bpf_no_leaks check (ini bpf_no_leaks = true)",
)


# --- options and markers ------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpflink", "bpflink: BPF tests on the real kernel")
    group.addoption("--bpf-strict", action="store_true", default=False,
                    help="a skip for a missing BPF feature fails when the kernel is at or above the feature's "
                         "minimum version and its config options are on (ini: bpf_strict)")
    group.addoption("--bpf-kernel", action="append", default=[], metavar="NAME",
                    help="run the selected tests in QEMU guests booting these pinned kernels instead of here "
                         "(repeatable, comma-separated, or 'all'); results are reported as <test id>@<kernel>")
    group.addoption("--bpf-kernel-results", metavar="DIR", default=None,
                    help="keep each guest's junit xml, console log and reports in DIR/<kernel>/")
    group.addoption("--bpf-guest-report", default=None, help=argparse.SUPPRESS)  # written inside the guests
    parser.addini("bpf_strict", type="bool", default=False, help="as --bpf-strict")
    parser.addini("bpf_no_leaks", type="bool", default=False,
                  help="apply the bpf_no_leaks check to every test (opt out with @pytest.mark.bpf_allow_leaks)")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if config.getoption("bpf_kernel", None) and getattr(config.option, "dist", "no") != "no":
        raise pytest.UsageError("--bpf-kernel runs the guests in parallel itself (VM_JOBS at a time): drop -n/--dist")
    path = config.getoption("bpf_guest_report", None)
    if path:
        config.pluginmanager.register(_GuestReport(config, path), "bpflink-guest-report")


def _strict(config: pytest.Config) -> bool:
    return bool(config.getoption("bpf_strict", False) or config.getini("bpf_strict"))


# --- bpf_requires, the NotSupportedError autoskip, the leak check --------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    names = [name for mark in item.iter_markers("bpf_requires") for name in mark.args]
    if not names:
        return
    from ._require import require

    try:
        verdict = require(names)
    except ValueError as exc:
        bad = str(exc)
    else:
        bad = ""
    if bad:
        pytest.fail(bad, pytrace=False)
    if verdict.ok:
        return
    if _strict(item.config) and verdict.unexplained:
        pytest.fail(verdict.fail_reason(), pytrace=False)
    _skip_at_item(verdict.skip_reason())


def _skip_at_item(reason: str) -> None:
    """A skip reported at the test's own location (as ``skipif`` marks are), not at this plugin's line."""
    try:
        raise pytest.skip.Exception(reason, allow_module_level=False, _use_item_location=True)
    except TypeError:  # a pytest without item locations for skips
        pytest.skip(reason)


def _leak_check_wanted(item: pytest.Item) -> bool:
    if item.get_closest_marker("bpf_allow_leaks") is not None:
        return False
    fixtures = getattr(item, "fixturenames", ())
    return "bpf_no_leaks" in fixtures or bool(item.config.getini("bpf_no_leaks"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    snapshot = None
    if _leak_check_wanted(item):
        from ._leaks import LeakSnapshot

        snapshot = LeakSnapshot.take()
    outcome = yield
    exc = outcome.excinfo[1] if outcome.excinfo else None
    # a NotSupportedError can only come from bpflink, so nothing is imported unless bpflink.errors already is
    if exc is not None and "bpflink.errors" in __import__("sys").modules \
            and item.get_closest_marker("bpf_no_autoskip") is None:
        from ._require import not_supported_verdict

        verdict = not_supported_verdict(exc, _strict(item.config))
        if verdict is not None:
            kind, reason = verdict
            try:
                if kind == "skip":
                    _skip_at_item(reason)
                pytest.fail(reason, pytrace=False)
            except (pytest.skip.Exception, pytest.fail.Exception) as replaced:
                replaced.__cause__ = exc
                outcome.force_exception(replaced)
            return
    if snapshot is not None and exc is None:
        owned_fds: set[int] = item.stash.get(_OWNED_FDS, set())
        owned_paths: set[str] = item.stash.get(_OWNED_PATHS, set())
        snapshot.own(owned_fds, owned_paths)
        leaks = snapshot.leaks()
        if leaks:
            try:
                pytest.fail("bpf_no_leaks: the test left behind:\n  " + "\n  ".join(leaks), pytrace=False)
            except pytest.fail.Exception as failure:
                outcome.force_exception(failure)


def _own(request: pytest.FixtureRequest, fds: set[int] | None = None, paths: set[str] | None = None) -> None:
    node = request.node
    node.stash.setdefault(_OWNED_FDS, set()).update(fds or ())
    node.stash.setdefault(_OWNED_PATHS, set()).update(paths or ())


# --- fixtures -----------------------------------------------------------------------------------------------


def _skip_or_fail_setup(what: str, exc: OSError) -> None:
    """Resources that cannot be made without privileges or tools skip (saying which); anything else is an error."""
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (1, 13):
        pytest.skip(f"{what}: {exc} (needs root)")
    if isinstance(exc, FileNotFoundError):
        pytest.skip(f"{what}: {exc}")
    raise exc


@pytest.fixture
def bpf_cgroup(request: pytest.FixtureRequest) -> Iterator[Cgroup]:
    """A fresh cgroup v2 directory (``.path``, ``.fd``, ``.run(cmd_or_callable)``), removed afterwards."""
    from ._cgroup import Cgroup
    from ._names import sweep

    sweep()

    try:
        cg = Cgroup.create()
    except OSError as exc:
        _skip_or_fail_setup("bpf_cgroup", exc)
        raise
    try:
        _own(request, {cg.fd})
        yield cg
    finally:
        cg.close()


@pytest.fixture
def bpf_netns(request: pytest.FixtureRequest) -> Iterator[Netns]:
    """A private network namespace with ``lo`` up: ``with bpf_netns:`` enters it in the current thread,
    ``bpf_netns.run(fn, *args)`` calls ``fn`` in a thread inside it; deleted afterwards."""
    from ._names import sweep
    from ._netns import Netns

    sweep()

    ns = Netns()
    try:
        ns.create()
    except (OSError, RuntimeError, __import__("subprocess").CalledProcessError) as exc:
        ns.close()
        if isinstance(exc, OSError):
            _skip_or_fail_setup("bpf_netns", exc)
        if os.geteuid() != 0:
            pytest.skip(f"bpf_netns: {exc} (needs root)")
        raise
    try:
        _own(request, {ns.fd})
        yield ns
    finally:
        ns.close()


def _pair(request: pytest.FixtureRequest, kind: str) -> Iterator[PeerPair]:
    from ._names import sweep
    from ._netns import NetkitUnavailable, PeerPair

    sweep()

    pair = PeerPair(kind)
    try:
        pair.create()
    except NetkitUnavailable as exc:
        if exc.errno == 2:  # no netkit-capable ip: a tool missing, not the kernel
            pytest.skip(f"bpf_netkit: {exc}")
        if _strict(request.config):
            pytest.fail(f"bpf_netkit: the probe found netkit but the device could not be made: {exc}", pytrace=False)
        pytest.skip(f"bpf_netkit: {exc}")
    except OSError as exc:
        _skip_or_fail_setup(f"bpf_{kind}", exc)
        raise
    try:
        _own(request, {pair.netns.fd})
        yield pair
    finally:
        pair.close()


@pytest.fixture
def bpf_veth(request: pytest.FixtureRequest) -> Iterator[PeerPair]:
    """A veth pair (``dev_a``/``addr_a`` <-> ``dev_b``/``addr_b``) inside a private netns (``.netns``), both ends up
    and addressed, traffic between the addresses crossing the pair; deleted afterwards."""
    yield from _pair(request, "veth")


@pytest.fixture
def bpf_netkit(request: pytest.FixtureRequest) -> Iterator[PeerPair]:
    """As ``bpf_veth`` with a netkit pair (``dev_a`` the primary, L2 mode) where the kernel has netkit, else an
    honest skip (the probed reason)."""
    from ._require import require

    verdict = require(["netkit"])
    if not verdict.ok:
        if _strict(request.config) and verdict.unexplained:
            pytest.fail(verdict.fail_reason(), pytrace=False)
        pytest.skip(verdict.skip_reason())
    yield from _pair(request, "netkit")


@pytest.fixture
def bpffs(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A private directory on bpffs (a ``Path``); everything pinned in it is unpinned and it is removed after."""
    from ._fs import BpfDir
    from ._names import sweep

    sweep()

    try:
        d = BpfDir.create()
    except OSError as exc:
        _skip_or_fail_setup("bpffs", exc)
        raise
    try:
        _own(request, paths={str(d.path)})
        yield d.path
    finally:
        d.close()


@pytest.fixture
def bpf_compile(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``bpf_compile("prog.bpf.c", cflags=(), include=())`` -> the compiled object's ``Path`` (clang, cached by
    content hash). A relative path is taken from the test file's directory first."""
    from ._compile import CompileError, compile_bpf

    base = Path(str(request.node.path)).parent

    def compile_(source: str | os.PathLike[str], **kwargs: Any) -> Path:
        src = Path(source)
        if not src.is_absolute() and (base / src).exists():
            src = base / src
        try:
            return compile_bpf(src, **kwargs)
        except CompileError as exc:
            pytest.fail(str(exc), pytrace=False)
        except FileNotFoundError as exc:
            if "clang" in str(exc) or "bpf_helpers" in str(exc):
                pytest.skip(f"bpf_compile: {exc}")
            raise

    return compile_


@pytest.fixture
def bpf_object(request: pytest.FixtureRequest, bpf_compile: Callable[..., Path]) -> Callable[..., Object]:
    """``bpf_object("prog.bpf.o" or "prog.bpf.c", **Object.open kwargs)`` -> a loaded ``bpflink.Object`` (a
    ``.c`` is compiled first with ``bpf_compile``), closed after the test."""
    from bpflink.object import Object

    from ._leaks import _fds

    opened: list[Object] = []

    def open_(path: str | os.PathLike[str], **kwargs: Any) -> Object:
        p = Path(path)
        if p.suffix == ".c":
            p = bpf_compile(p)
        elif not p.is_absolute() and (Path(str(request.node.path)).parent / p).exists():
            p = Path(str(request.node.path)).parent / p
        before = set(_fds())
        obj = Object.open(p, **kwargs)
        opened.append(obj)
        _own(request, set(_fds()) - before)  # libbpf's own fds of the object: closed with it, not leaks
        return obj

    def close_all() -> None:
        for obj in reversed(opened):
            obj.close()

    request.addfinalizer(close_all)
    return open_


class LeakGuard:
    """What the ``bpf_no_leaks`` fixture yields: ``own(fds=, paths=)`` excludes things the test hands on to be
    cleaned up elsewhere."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def own(self, fds: Any = (), paths: Any = ()) -> None:
        _own(self._request, set(fds), {os.fspath(p) for p in paths})


@pytest.fixture
def bpf_no_leaks(request: pytest.FixtureRequest) -> LeakGuard:
    """Fail the test when fds, kernel links, maps, programs (held through fds) or bpffs pins created during it
    remain at its end, naming each. For every test: ini ``bpf_no_leaks = true``."""
    return LeakGuard(request)


# --- --bpf-kernel: the selected tests in QEMU guests ---------------------------------------------------------


class _GuestReport:
    """Inside a guest: every report serialised (as pytest-xdist does) to a JSON-lines file the host reads."""

    def __init__(self, config: pytest.Config, path: str) -> None:
        self.config = config
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the session, closed at unconfigure)

    def _write(self, report: Any) -> None:
        import json

        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.out.write(json.dumps(data) + "\n")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._write(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report)

    def pytest_unconfigure(self) -> None:
        self.out.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    config = session.config
    if not config.getoption("bpf_kernel") or config.option.collectonly:
        return None
    from ._runner import run_guests

    if session.testsfailed and not config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    run_guests(session)
    return True
