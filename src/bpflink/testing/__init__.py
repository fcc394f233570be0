"""``bpflink.testing``: the public pytest plugin (fixtures, markers, leak check) and the QEMU kernel runner.

The plugin is registered through the ``pytest11`` entry point, so installing bpflink is enough: its fixtures
(``bpf_cgroup``, ``bpf_netns``, ``bpf_veth``, ``bpf_netkit``, ``bpffs``, ``bpf_compile``, ``bpf_object``,
``bpf_no_leaks``), markers (``bpf_requires``, ``bpf_no_autoskip``, ``bpf_allow_leaks``) and options
(``--bpf-strict``, ``--bpf-kernel``) are there in every pytest run, and cost nothing until a test uses them.
The classes behind the fixtures can also be used directly (outside pytest too):

>>> # not run as a doctest: makes a cgroup and runs ping (tests/test_plugin.py uses these)
>>> from bpflink.testing import Cgroup  # doctest: +SKIP
>>> with Cgroup.create("demo") as cg:  # doctest: +SKIP
...     cg.run(["ping", "-c1", "127.0.0.1"])

Reference: docs/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cgroup import Cgroup
    from ._compile import CompileError, compile_bpf
    from ._fs import BpfDir, mount_kernel_filesystems
    from ._leaks import LeakSnapshot
    from ._netns import NetkitUnavailable, Netns, NetnsWorker, PeerPair
    from ._require import require

_LAZY = {
    "Cgroup": "._cgroup", "compile_bpf": "._compile", "CompileError": "._compile", "BpfDir": "._fs",
    "mount_kernel_filesystems": "._fs", "LeakSnapshot": "._leaks", "NetkitUnavailable": "._netns",
    "Netns": "._netns", "NetnsWorker": "._netns", "PeerPair": "._netns", "require": "._require",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bpflink.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


__all__ = ["BpfDir", "Cgroup", "CompileError", "LeakSnapshot", "NetkitUnavailable", "Netns", "NetnsWorker", "PeerPair",
           "compile_bpf", "mount_kernel_filesystems", "require"]
