"""What each link feature needs: the minimum kernel and the config options, as documented upstream.

Used to explain a refusal (``NotSupportedError``), by ``bpflink.probe`` and by the tests to tell an honest
skip (kernel too old, option off) from a bug (kernel new enough, option on, and it still fails).

>>> FEATURES["tcx"].min_kernel
(6, 6)
"""

from __future__ import annotations

from dataclasses import dataclass

from . import kernel


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
    # an EXT link with any attach type: before, LINK_CREATE wants the EXT program's expected attach type (0)
    Feature("freplace_any_attach_type", (5, 19), ("CONFIG_DEBUG_INFO_BTF",)),
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
    Feature("raw_tp_cookie", (6, 10)),  # BPF_RAW_TRACEPOINT_OPEN's cookie, bpf_get_attach_cookie() in raw_tp
    Feature("uprobe_session", (6, 13), ("CONFIG_UPROBES",)),
    Feature("cgroup_mprog", (6, 17), ("CONFIG_CGROUP_BPF",)),
)}


def kernel_version() -> tuple[int, int]:
    """The running kernel's (major, minor) (``bpflink.kernel.version``)."""
    return kernel.version()


def kernel_config() -> dict[str, str] | None:
    """The running kernel's config (``bpflink.kernel.config``), None if unreadable."""
    return kernel.config()


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


__all__ = ["FEATURES", "Feature", "explain", "kernel_config", "kernel_version", "missing_configs"]
