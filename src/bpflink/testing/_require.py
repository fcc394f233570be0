"""The honest-skip rule shared by the ``bpf_requires`` marker and the ``NotSupportedError`` autoskip.

A requirement is what ``bpflink probe --require`` takes (an attach type, a family, a feature name such as
``cgroup_unix`` or ``kprobe_session``, or ``fentry``/``fexit``/``fmod_ret``/``lsm``/``tp_btf``/``fsession``);
it is resolved by the same code as the CLI and probed by trial on the running kernel.

The verdict for something missing: a skip whose reason is the probe's (``trace_kprobe_multi: EOPNOTSUPP: kernel
config lacks CONFIG_FPROBE``). In strict mode (``--bpf-strict``, ini ``bpf_strict = true``) the skip stands only
when the kernel is older than the feature's minimum or its config options are off (``bpflink.features.explain``
finds a reason); otherwise the kernel should have it, and the test fails naming the refusal. A
``NotSupportedError`` naming no known feature (the headers bpflink was built with lack a definition) cannot be
explained by the kernel, so it fails in strict mode too.

>>> # not run as a doctest: the verdict depends on the kernel (this one lacks CONFIG_FPROBE)
>>> require(["kprobe_multi"])  # doctest: +SKIP
Verdict(missing=['kprobe_multi (trace_kprobe_multi: EOPNOTSUPP: kernel config lacks CONFIG_FPROBE)'], ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """``missing``: one line per unmet requirement (empty: all met); ``unexplained``: the ones the kernel version
    and config say it should have had (a failure in strict mode)."""

    missing: list[str]
    unexplained: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing

    def skip_reason(self) -> str:
        return "bpf_requires: missing " + " | ".join(self.missing)

    def fail_reason(self) -> str:
        return ("bpf_requires (strict): refused although the kernel is new enough and its config options are on: "
                + " | ".join(self.unexplained))


def require(names: Sequence[str]) -> Verdict:
    """Probe ``names`` (as ``bpflink probe --require`` takes them). ``ValueError`` for a name that is none."""
    from bpflink.cli import UsageError, _resolve_requirements
    from bpflink.features import FEATURES, explain
    from bpflink.probing import probe

    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"bpf_requires takes one or more names (str), got {list(names)!r}")
    try:
        wanted = _resolve_requirements(",".join(names))
    except UsageError as exc:
        raise ValueError(str(exc).replace("--require", "bpf_requires")) from None
    types = sorted({at for ats in wanted.values() for at in ats})
    by_type = {r.attach_type: r for r in probe(types)}
    missing, unexplained = [], []
    for name, ats in wanted.items():
        bad = [by_type[at] for at in ats if not by_type[at].supported]
        if not bad:
            continue
        why = "; ".join(f"{r.attach_type.name.lower()}: {r.reason}" for r in bad)
        missing.append(f"{name} ({why})")
        for r in bad:
            if r.feature in FEATURES and not explain(r.feature):
                unexplained.append(f"{r.attach_type.name.lower()} needs {r.feature} "
                                   f"(>= {FEATURES[r.feature].min_kernel_str}): {r.reason}")
    return Verdict(missing, unexplained)


def honest_verdict(feature: str, exc: BaseException, *, strict: bool,
                   extra_reason: str | None = None) -> tuple[str, str]:
    """The rule for a refusal of ``feature`` (a ``bpflink.features.FEATURES`` name): ``("skip", reason)`` when the
    kernel's version or config explains it (or ``extra_reason``, a cause the caller established by probing) or when
    not ``strict``; ``("fail", reason)`` otherwise. The one implementation of the rule (bpflink's own tests use it
    through tests/honest_skips.py)."""
    from bpflink.errors import errno_name
    from bpflink.features import FEATURES, explain

    code = errno_name(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
    why = (explain(feature) if feature in FEATURES else "") or extra_reason
    if why:
        return "skip", f"{feature} not available here: {why} (kernel answered {code})"
    if strict and feature in FEATURES:
        return "fail", (f"{feature} refused ({code}: {exc}) although the kernel is >= "
                        f"{FEATURES[feature].min_kernel_str} and its config options are on: the probe or bpflink "
                        "is wrong")
    if strict:  # no kernel fact explains it (e.g. the headers bpflink was built with lack a definition)
        return "fail", f"{feature} refused ({code}: {exc}); no kernel version or config option explains it"
    return "skip", f"{feature} not supported here: {exc}"


def not_supported_verdict(exc: BaseException, strict: bool) -> tuple[str, str] | None:
    """For a ``NotSupportedError`` raised in a test: ``("skip" | "fail", reason)``; None for other exceptions."""
    from bpflink.errors import NotSupportedError

    if not isinstance(exc, NotSupportedError):
        return None
    return honest_verdict(str(getattr(exc, "feature", "") or "feature"), exc, strict=strict)
