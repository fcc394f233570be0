"""Which attach types work on the running kernel, found by trial and cached per process (``bpflink.kernel``).

The package: this module is the public API and the cache; ``_harness`` makes the harmless targets (an empty
cgroup, a private network namespace, a sockmap) in a thread of its own; each link family's record
(``bpflink.families``) says, as its ``probe`` recipe, what to load and where to attach; ``_btf`` tries the
attach types whose program names a vmlinux BTF target at load (iter, fentry/fexit, fmod_ret, lsm, lsm_cgroup,
tp_btf, struct_ops). Every link and program is closed before a probe returns.

>>> import bpflink
>>> from bpflink import AttachType
>>> result = probe_attach_type(AttachType.CGROUP_INET_EGRESS)  # a probe, cached for the process
>>> result.family, isinstance(result.supported, bool)
('cgroup', True)
>>> # not run as a doctest: the answer is this kernel's (this one lacks CONFIG_FPROBE)
>>> probe_attach_type(AttachType.TRACE_KPROBE_MULTI).reason  # doctest: +SKIP
'EOPNOTSUPP: link_create refused: kernel config lacks CONFIG_FPROBE'
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import asm, kernel, resolve
from .. import lowlevel as ll
from ..enums import AttachType
from ..errors import ENOTSUPP, errno_name, hint_for, strerror
from ..families import family_of, record_of
from ..families._family import Recipe
from ..features import FEATURES, explain
from . import _btf
from ._harness import PROBE_PROG_NAME, Trial, Unavailable, run_in_private_thread


@dataclass(frozen=True)
class ProbeResult:
    """The verdict for one attach type: ``errno`` is what the kernel answered (None when it accepted)."""

    attach_type: AttachType
    family: str
    supported: bool
    errno: int | None
    reason: str

    @property
    def feature(self) -> str:
        """The ``features.FEATURES`` name this attach type needs (``kprobe_session`` is not ``kprobe_multi``)."""
        return feature_of(self.attach_type)

    def to_dict(self) -> dict[str, Any]:
        return {"attach_type": self.attach_type.name.lower(), "family": self.family, "supported": self.supported,
                "errno": None if self.errno is None else errno_name(self.errno), "reason": self.reason}


def feature_of(attach_type: AttachType) -> str:
    """The feature (``features.FEATURES`` key) an attach type needs.

    >>> feature_of(AttachType.TRACE_KPROBE_SESSION), feature_of(AttachType.TCX_EGRESS)
    ('kprobe_session', 'tcx')
    """
    if attach_type == AttachType.TRACE_KPROBE_SESSION:
        return "kprobe_session"
    if attach_type == AttachType.TRACE_UPROBE_SESSION:
        return "uprobe_session"
    if attach_type.name.startswith("CGROUP_UNIX_"):  # AF_UNIX sock_addr hooks came later than cgroup links
        return "cgroup_unix"
    return _btf.FEATURE.get(attach_type.name) or family_of(attach_type)


# attach types that name no link at all: only an expected_attach_type for other attach paths
_NO_LINK = {
    "LIRC_MODE2": "LIRC_MODE2 programs attach to a lirc device with BPF_PROG_ATTACH only; the kernel makes no "
                  "link of this attach type",
    **{name: f"{name} is the expected_attach_type of XDP programs stored in a {name[4:].lower()} entry; the "
             "kernel makes no link of this attach type" for name in ("XDP_DEVMAP", "XDP_CPUMAP")},
    **{name: f"{name} is the expected_attach_type of SK_REUSEPORT programs attached with "
             "setsockopt(SO_ATTACH_REUSEPORT_EBPF); the kernel makes no link of this attach type"
       for name in ("SK_REUSEPORT_SELECT", "SK_REUSEPORT_SELECT_OR_MIGRATE")},
}


def _recipe(at: AttachType) -> Recipe | None:
    make = record_of(at).probe
    return None if make is None or at.name in _btf.NAMES else make(at)


def _has_probe(at: AttachType) -> bool:
    return at.name in _btf.NAMES or _recipe(at) is not None


def probeable() -> tuple[AttachType, ...]:
    """The attach types ``probe()`` can try on this build (those the compiled headers know)."""
    return tuple(at for at in AttachType if _has_probe(at) and at.available)


# --- one trial ------------------------------------------------------------------------------------------------


def _verdict(at: AttachType, err: int | None, recipe: Recipe | None = None, *, load_failed: bool = False
             ) -> ProbeResult:
    family = family_of(at)
    feature = feature_of(at)
    if err is None:
        return ProbeResult(at, family, True, None, "a link was created and released")
    if not load_failed and recipe is not None and err == recipe.proof_errno:
        return ProbeResult(at, family, True, err,
                           f"the kernel knows the attach type (answered {errno_name(err)} to a probe request)")
    why = explain(feature) if feature in FEATURES else ""
    if err == _errno.EPERM:
        mode = kernel.lockdown()  # a fact worth showing, not proof that lockdown is the cause
        why = (why or hint_for(err) or "") + (f" (kernel lockdown is '{mode}')" if mode else "")
    what = "program load refused" if load_failed else "link_create refused"
    detail = why or hint_for(err, family) or strerror(err)
    return ProbeResult(at, family, False, err, f"{errno_name(err)}: {what}: {detail}")


def _not_probed(at: AttachType, exc: BaseException) -> ProbeResult:
    why = exc if isinstance(exc, Unavailable) else f"{type(exc).__name__}: {exc}"
    return ProbeResult(at, family_of(at), False, None, f"not probed: {why}")


def _probe_one(at: AttachType, trial: Trial) -> ProbeResult:
    try:
        if at.name in _btf.NAMES:  # the program names a BTF target at load
            return ProbeResult(at, family_of(at), *_btf.run(at, trial.cgroup_fd))
        recipe = _recipe(at)
        assert recipe is not None  # _attach_type admitted only attach types with a recipe
        return _probe_link(at, recipe, trial)
    except (Unavailable, OSError) as exc:  # a target the probe could not set up: no verdict on the kernel
        return _not_probed(at, exc)


def _probe_link(at: AttachType, recipe: Recipe, trial: Trial) -> ProbeResult:
    opts_load = ll.new_prog_load_opts()
    if recipe.expected_attach_type:
        opts_load.expected_attach_type = int(at)
    code = asm.return_imm(recipe.ret)
    insns = ll.ffi.new("char[]", code)
    prog = ll.bpf_prog_load(int(recipe.prog_type), PROBE_PROG_NAME, b"GPL",
                            ll.ffi.cast("struct bpf_insn *", insns), len(code) // 8, opts_load)
    if prog < 0:
        return _verdict(at, -prog, recipe, load_failed=True)
    keep: list[Any] = []
    try:
        try:
            target, opts = recipe.target(trial, keep)
        except Unavailable as exc:
            return _not_probed(at, exc)
        link = ll.bpf_link_create(prog, target, int(at), opts)
        if link >= 0:
            os.close(link)
            return _verdict(at, None, recipe)
        return _verdict(at, -link, recipe)
    finally:
        os.close(prog)


# --- the API and its cache ------------------------------------------------------------------------------------


def _attach_type(value: AttachType | str | int) -> AttachType:
    at = resolve.attach_type(value, missing_ok=True)  # one set of rules; probe() reports what the headers lack
    if not _has_probe(at):
        why = _NO_LINK.get(at.name, "bpflink does not know how to try it")
        raise ValueError(f"bpflink has no probe for {at.name}: {why}")
    return at


def _key(at: AttachType) -> tuple[str, AttachType]:
    return ("probe", at)


def probe(attach_types: Iterable[AttachType | str | int] | None = None) -> tuple[ProbeResult, ...]:
    """Probe ``attach_types`` (default: every probeable one) on the running kernel; results are cached.

    >>> # not run as a doctest: the answer is this kernel's
    >>> [r.attach_type.name for r in bpflink.probe() if not r.supported]  # doctest: +SKIP
    ['NETKIT_PRIMARY', 'NETKIT_PEER', 'TRACE_KPROBE_MULTI', 'TRACE_KPROBE_SESSION']
    """
    if isinstance(attach_types, (str, bytes, int)):  # one attach type where a collection was meant
        raise TypeError(f"probe() takes a collection of attach types (or None), not one {type(attach_types).__name__}"
                        "; probe_attach_type() takes one")
    wanted = probeable() if attach_types is None else tuple(_attach_type(a) for a in attach_types)
    with kernel.trial_lock():
        found: dict[AttachType, ProbeResult] = {}
        todo = []
        for at in wanted:
            known = kernel.recall(_key(at))
            if known is not None:
                found[at] = known
            elif not at.available:
                found[at] = ProbeResult(at, family_of(at), False, None,
                                        f"the headers bpflink was compiled against do not define {at.cname}")
            else:
                todo.append(at)
        if todo:
            def run(trial: Trial) -> None:
                for at in todo:
                    found[at] = _probe_one(at, trial)

            run_in_private_thread(run)
        for at, result in found.items():
            kernel.remember(_key(at), result)
        return tuple(found[at] for at in wanted)


def probe_attach_type(attach_type: AttachType | str | int) -> ProbeResult:
    """The (cached) probe result of one attach type."""
    return probe([attach_type])[0]


def supports(attach_type: AttachType | str | int) -> bool:
    """Whether links of ``attach_type`` can be created on this kernel, by trial (cached).

    >>> # not run as a doctest: the answer is this kernel's
    >>> bpflink.supports(AttachType.TCX_INGRESS)  # doctest: +SKIP
    True
    """
    return probe_attach_type(attach_type).supported


def not_supported_error(attach_type: AttachType, err: int) -> OSError | None:
    """For ``link_create``'s error path: a ``NotSupportedError`` when ``err`` (EINVAL, EOPNOTSUPP, ENOTSUPP)
    comes from a kernel that the probe says lacks this attach type; None when it is the caller's mistake."""
    from ..errors import NotSupportedError

    if err not in (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP) or not _has_probe(attach_type):
        return None
    try:
        result = probe_attach_type(attach_type)
    except Exception:  # the probe's own failure must never replace the caller's error
        return None
    # only a probe that met the same kind of refusal proves a missing feature (an EPERM there is a policy)
    if result.supported or result.errno not in (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP):
        return None
    feature = result.feature
    if attach_type.name == "LSM_MAC" and not explain(feature):
        # lsm programs exist (5.7, attached by RAW_TRACEPOINT_OPEN): link_create of one came with the tracing links
        feature = "tracing_cookie"
    min_kernel = FEATURES[feature].min_kernel_str if feature in FEATURES else None
    return NotSupportedError(feature, result.reason, min_kernel=min_kernel)


__all__ = ["PROBE_PROG_NAME", "ProbeResult", "feature_of", "not_supported_error", "probe", "probe_attach_type",
           "probeable", "supports"]
