"""A dry run for one attach: what this kernel would use, what it takes, and what is known to bite.

Nothing is attached and nothing is loaded: the answer comes from the kernel version and config, this
process's capabilities (``CapEff`` in ``/proc/self/status``), lockdown and the unprivileged-BPF sysctl.
``bpflink probe`` is the test by trial.

>>> explain_attach("tcx_ingress")["capabilities"]["needed"]
['CAP_BPF', 'CAP_NET_ADMIN']
"""

from __future__ import annotations

from typing import Any

from .enums import AttachType
from .families import family_of
from .features import FEATURES, kernel_config, kernel_version

_CAP_BITS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}
_NET = ("cgroup", "tcx", "netkit", "xdp", "netfilter", "netns", "sockmap")
_TRACE = ("perf_event", "kprobe_multi", "uprobe_multi", "tracing", "iter", "struct_ops")

_MECHANISM = {
    "cgroup": "BPF_LINK_CREATE on a cgroup v2 directory fd: a cgroup link (multi-attach; before/after ordering "
              "from 6.17)",
    "tcx": "BPF_LINK_CREATE with the ifindex: a tcx link in the device's ingress/egress chain (tc's BPF "
           "entry point, no qdisc needed)",
    "netkit": "BPF_LINK_CREATE with a netkit device's ifindex: a netkit link (primary or peer side)",
    "xdp": "BPF_LINK_CREATE with the ifindex: an xdp link (one per device; native mode when the driver "
           "supports it, else generic)",
    "netns": "BPF_LINK_CREATE on a network namespace fd: a netns link (flow dissector or sk_lookup)",
    "netfilter": "BPF_LINK_CREATE with pf/hooknum/priority: a netfilter hook link",
    "iter": "BPF_LINK_CREATE on the iterator target (BTF): an iter link, read with BPF_ITER_CREATE",
    "perf_event": "BPF_LINK_CREATE on a perf event fd (tracepoint, kprobe, uprobe from perf_event_open): a "
                  "perf_event link; before 5.15 PERF_EVENT_IOC_SET_BPF on the perf fd (no link)",
    "kprobe_multi": "BPF_LINK_CREATE with symbols or addresses: one kprobe_multi link over fprobe",
    "uprobe_multi": "BPF_LINK_CREATE with a path and offsets: one uprobe_multi link for every offset",
    "tracing": "BPF_LINK_CREATE (BPF_RAW_TRACEPOINT_OPEN on older kernels) for a program whose target was "
               "fixed at load (attach_btf_id): a tracing link",
    "struct_ops": "BPF_LINK_CREATE on a struct_ops map created with BPF_F_LINK: a struct_ops link",
    "sockmap": "BPF_LINK_CREATE on a sockmap/sockhash map fd: a sockmap link",
}

# facts measured here or documented upstream (shared/notes, issue texts); words, not code
_QUIRKS = {
    "cgroup": ["the first link of an attach type on the system flips a static key: ~70 us instead of ~4 us",
               "BPF_PROG_QUERY reports no link ids for cgroup hooks on 6.18 (link_id 0)",
               "a detached cgroup link keeps its fd; its info shows cgroup_id 0"],
    "tcx": ["create ~16 ms and close ~8 ms: the kernel waits for RCU grace periods",
            "BPF_PROG_QUERY knows revision and link ids from 6.6 (EINVAL when passed before)"],
    "xdp": ["create ~16 ms, close ~8 ms (RCU in the XDP dispatcher)",
            "EBUSY when the device already runs an XDP program"],
    "netkit": ["ENXIO when the device is not a netkit device"],
    "netns": ["one flow dissector per network namespace (E2BIG for a second), up to 64 sk_lookup links"],
    "netfilter": ["priority must not be INT_MIN or INT_MAX (ERANGE); pf only NFPROTO_IPV4/IPV6"],
    "perf_event": ["detaching waits for an RCU tasks-trace grace period (~40 ms here)",
                   "a kretprobe on a missing symbol answers EINVAL on old kernels (ENOENT on newer ones)",
                   "link info names the event (tracepoint, kprobe, uprobe) only from 6.6"],
    "kprobe_multi": ["needs CONFIG_FPROBE; an unknown or untraceable symbol answers ESRCH "
                     "(see available_filter_functions)"],
    "uprobe_multi": ["0 offsets answer EINVAL, more than 2**20 E2BIG; creating costs ~0.5 us per offset plus "
                     "one 5-15 ms RCU wait, closing 16-50 ms"],
    "tracing": ["fentry/fexit/lsm loads are refused under lockdown (EPERM)",
                "the target is fixed when the program is loaded, not when the link is made"],
    "sockmap": ["a verdict and a stream verdict program cannot both be attached to one map (EBUSY)"],
    "struct_ops": ["the map must be created with BPF_F_LINK (SEC(\".struct_ops.link\")) and its value written"],
    "iter": [],
}


def capabilities() -> set[str]:
    """The effective capabilities (of those BPF cares about) of this process."""
    eff = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    eff = int(line.split()[1], 16)
    except OSError:
        pass
    return {name for name, bit in _CAP_BITS.items() if eff >> bit & 1}


def lockdown() -> str:
    """The kernel lockdown mode, or why it is unknown."""
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except FileNotFoundError:
        return ("unknown: securityfs is not mounted (mount -t securityfs securityfs /sys/kernel/security) or "
                "the kernel has no lockdown LSM")
    except OSError as exc:
        return f"unknown: {exc.strerror}"
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else text.strip()


def _sysctl(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def explain_attach(attach_type: AttachType | str | int) -> dict[str, Any]:
    """The dry run for ``attach_type`` as a JSON-ready dict (``bpflink explain`` prints it)."""
    if isinstance(attach_type, str):
        at = AttachType.parse(attach_type.removeprefix("bpf_").removeprefix("BPF_"))
    else:
        at = AttachType(attach_type)
    from .probe import feature_of

    family = family_of(at)
    feature = FEATURES.get(feature_of(at)) or FEATURES.get(family)
    running = kernel_version()
    needs = feature.min_kernel if feature else (0, 0)
    config = kernel_config()
    configs: dict[str, str] = {}
    for name in feature.configs if feature else ():
        configs[name] = "unknown (config not readable)" if config is None else config.get(name, "not set")
    needed = ["CAP_BPF"] + (["CAP_NET_ADMIN"] if family in _NET else ["CAP_PERFMON"] if family in _TRACE else [])
    held = capabilities()
    missing = [] if "CAP_SYS_ADMIN" in held else [c for c in needed if c not in held]
    quirks = list(_QUIRKS.get(family, []))
    if family in ("tracing", "perf_event", "kprobe_multi"):
        quirks.append("lockdown 'confidentiality' forbids reading kernel memory from BPF (bpf_probe_read_kernel)")
    return {
        "attach_type": at.name.lower(),
        "family": family,
        "feature": feature.name if feature else None,
        "mechanism": _MECHANISM.get(family, "BPF_LINK_CREATE"),
        "kernel": {"running": "%d.%d" % running, "needs": "%d.%d" % needs, "ok": running >= needs},
        "config": configs,
        "capabilities": {"needed": needed, "held": sorted(held), "missing": missing,
                         "note": "loading the program needs these; a process handed a program fd may create "
                                 "some links with less (README: Security)"},
        "lockdown": lockdown(),
        "unprivileged_bpf_disabled": _sysctl("/proc/sys/kernel/unprivileged_bpf_disabled"),
        "quirks": quirks,
    }


__all__ = ["capabilities", "explain_attach", "lockdown"]
