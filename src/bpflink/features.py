"""What each link feature needs: the minimum kernel and the config options, as documented upstream.

Used to explain a refusal (``NotSupportedError``), by ``bpflink.probe`` and by the tests to tell an honest
skip (kernel too old, option off) from a bug (kernel new enough, option on, and it still fails).

>>> FEATURES["tcx"].min_kernel
(6, 6)
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import stat
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Feature:
    name: str
    min_kernel: tuple[int, int]
    configs: tuple[str, ...] = ()

    @property
    def min_kernel_str(self) -> str:
        return "%d.%d" % self.min_kernel


FEATURES: dict[str, Feature] = {f.name: f for f in (
    Feature("cgroup", (5, 7), ("CONFIG_CGROUP_BPF",)),
    Feature("netns", (5, 8)),
    Feature("iter", (5, 8)),
    Feature("iter_task_filter", (6, 1)),  # union bpf_iter_link_info .task (tid/pid/pid_fd) for task iterators
    Feature("iter_cgroup", (6, 1)),  # the cgroup iterator (iter/cgroup)
    Feature("xdp", (5, 9)),
    Feature("freplace", (5, 10), ("CONFIG_DEBUG_INFO_BTF",)),
    Feature("tracing", (5, 5), ("CONFIG_DEBUG_INFO_BTF", "CONFIG_FUNCTION_TRACER")),
    Feature("tracing_cookie", (5, 19), ("CONFIG_DEBUG_INFO_BTF",)),
    Feature("lsm", (5, 7), ("CONFIG_BPF_LSM", "CONFIG_DEBUG_INFO_BTF")),
    Feature("lsm_cgroup", (6, 0), ("CONFIG_BPF_LSM", "CONFIG_CGROUP_BPF")),
    Feature("fsession", (7, 0), ("CONFIG_DEBUG_INFO_BTF", "CONFIG_FUNCTION_TRACER")),
    Feature("perf_event", (5, 15)),
    Feature("bpf_cookie", (5, 15)),  # bpf_get_attach_cookie(): set through a link, so no cookie without one
    # a program on a kprobe/uprobe perf event (the PMUs): bpflink.attach uses the perf event ioctl before 5.15
    Feature("kprobe", (4, 17), ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS")),
    Feature("uprobe", (4, 17), ("CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS")),
    Feature("kprobe_perf_event", (5, 15), ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS")),
    Feature("kprobe_multi", (5, 18), ("CONFIG_FPROBE",)),
    Feature("netfilter", (6, 4), ("CONFIG_NETFILTER_BPF_LINK",)),
    Feature("struct_ops", (6, 4)),
    Feature("tcx", (6, 6), ("CONFIG_NET_XGRESS",)),
    Feature("perf_event_link_info", (6, 6)),  # link info names a perf_event link's event (type, name, cookie)
    Feature("uprobe_multi", (6, 6), ("CONFIG_UPROBES",)),
    Feature("netkit", (6, 7), ("CONFIG_NETKIT",)),
    Feature("cgroup_unix", (6, 7), ("CONFIG_CGROUP_BPF",)),  # BPF_CGROUP_UNIX_* (AF_UNIX sock_addr hooks)
    Feature("sockmap", (6, 10), ("CONFIG_BPF_STREAM_PARSER",)),
    Feature("kprobe_session", (6, 10), ("CONFIG_FPROBE",)),
    Feature("tp_btf_link", (6, 10), ("CONFIG_DEBUG_INFO_BTF",)),
    Feature("uprobe_session", (6, 13), ("CONFIG_UPROBES",)),
    Feature("cgroup_mprog", (6, 17), ("CONFIG_CGROUP_BPF",)),
)}


@lru_cache(maxsize=1)
def kernel_version() -> tuple[int, int]:
    """The running kernel's (major, minor)."""
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@lru_cache(maxsize=1)
def kernel_config() -> dict[str, str] | None:
    """The running kernel's config (``$BPFLINK_KERNEL_CONFIG``, ``/proc/config.gz`` or ``/boot/config-$(uname -r)``),
    None if unreadable. scripts/vmtest sets ``BPFLINK_KERNEL_CONFIG`` to the config shipped in the guest's .deb."""
    override = os.environ.get("BPFLINK_KERNEL_CONFIG")
    if override:  # the explicit file wins over /proc/config.gz; an unreadable one is reported and ignored
        text = _read_config(override)
        if text is not None:
            return text
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            return _parse_config(f.read())
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        pass
    release = platform.release()
    for path in (f"/boot/config-{release}", f"/lib/modules/{release}/config"):
        if os.path.exists(path):
            return _read_config(path)
    return None


def _read_config(path: str) -> dict[str, str] | None:
    try:
        # O_NONBLOCK and a regular-file check: a FIFO there must not hang the first error message
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, encoding="utf-8") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError("not a regular file")
            return _parse_config(f.read())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.warn(f"ignoring kernel config {path!r}: {exc}", RuntimeWarning, stacklevel=3)
        return None


def _parse_config(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(CONFIG_\w+)=(.*)$", text, re.M))


def missing_configs(feature: str) -> list[str] | None:
    """The feature's config options that are off here; None when the config cannot be read."""
    config = kernel_config()
    if config is None:
        return None
    return [c for c in FEATURES[feature].configs if config.get(c) not in ("y", "m")]


def explain(feature: str) -> str:
    """Why ``feature`` may be missing here, from the kernel version and config (no guessing beyond those)."""
    f = FEATURES[feature]
    reasons = []
    if kernel_version() < f.min_kernel:
        reasons.append(f"kernel {'%d.%d' % kernel_version()} < {f.min_kernel_str}")
    missing = missing_configs(feature)
    if missing:
        reasons.append("kernel config lacks " + ", ".join(missing))
    return "; ".join(reasons)


os.register_at_fork(after_in_child=kernel_config.cache_clear)  # a child may run in another mount namespace


__all__ = ["FEATURES", "Feature", "explain", "kernel_config", "kernel_version", "missing_configs"]
