"""A dry run for one attach: what this kernel would use, what it takes, and what is known to bite.

Nothing is attached and nothing is loaded: the answer comes from the kernel version and config, this
process's capabilities (``CapEff`` in ``/proc/self/status``), lockdown and the unprivileged-BPF sysctl.
``bpflink probe`` is the test by trial.

>>> explain_attach("tcx_ingress")["capabilities"]["needed"]
['CAP_BPF', 'CAP_NET_ADMIN']
"""

from __future__ import annotations

from typing import Any

from . import kernel
from .enums import AttachType
from .families import record_of
from .features import FEATURES, kernel_config, kernel_version

_CAP_BITS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}


def capabilities() -> set[str]:
    """The effective capabilities (of those BPF cares about) of this process."""
    eff = kernel.capabilities()
    return {name for name, bit in _CAP_BITS.items() if eff >> bit & 1}


def lockdown() -> str:
    """The kernel lockdown mode, or why it is unknown."""
    mode = kernel.lockdown()
    if mode:
        return mode
    try:  # off, or unreadable: say which
        with open("/sys/kernel/security/lockdown"):
            pass
    except FileNotFoundError:
        return ("unknown: securityfs is not mounted (mount -t securityfs securityfs /sys/kernel/security) or "
                "the kernel has no lockdown LSM")
    except OSError as exc:
        return f"unknown: {exc.strerror}"
    return "none"


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
    from .probing import feature_of

    fam = record_of(at)
    family = fam.name
    feature = FEATURES.get(feature_of(at)) or FEATURES.get(family)
    running = kernel_version()
    needs = feature.min_kernel if feature else (0, 0)
    config = kernel_config()
    configs: dict[str, str] = {}
    for name in feature.configs if feature else ():
        configs[name] = "unknown (config not readable)" if config is None else config.get(name, "not set")
    needed = ["CAP_BPF", *fam.caps]
    held = capabilities()
    missing = [] if "CAP_SYS_ADMIN" in held else [c for c in needed if c not in held]
    return {
        "attach_type": at.name.lower(),
        "family": family,
        "feature": feature.name if feature else None,
        "mechanism": fam.mechanism,
        "kernel": {"running": "%d.%d" % running, "needs": "%d.%d" % needs, "ok": running >= needs},
        "config": configs,
        "capabilities": {"needed": needed, "held": sorted(held), "missing": missing,
                         "note": "loading the program needs these; a process handed a program fd may create "
                                 "some links with less (README: Security)"},
        "lockdown": lockdown(),
        "unprivileged_bpf_disabled": _sysctl("/proc/sys/kernel/unprivileged_bpf_disabled"),
        "quirks": list(fam.quirks),
    }


__all__ = ["capabilities", "explain_attach", "lockdown"]
