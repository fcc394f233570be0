"""Honest skips. A test that hits a refusal calls ``unsupported(feature, exc)``: it skips only when the
kernel is older than the feature's minimum or its config option is off (the probed reason is in the skip
message); otherwise the refusal is a bug and the test fails. The rule is bpflink.testing's (``bpf_strict``, on
for this suite in pyproject.toml), applied here to refusals a test catches itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from bpflink.testing._require import honest_verdict

if TYPE_CHECKING:
    from bpflink import Link


def unsupported(feature: str, exc: BaseException, *, extra_reason: str | None = None) -> NoReturn:
    """Skip with the probed reason when the kernel lacks ``feature``; fail when it should have it.

    ``extra_reason``: another detected cause (e.g. "kernel lockdown refuses tracing program loads"), given only
    when the test established it by probing.
    """
    kind, reason = honest_verdict(feature, exc, strict=True, extra_reason=extra_reason)
    if kind == "skip":
        pytest.skip(reason)
    pytest.fail(reason)


def link_or_skip(feature: str, *args: Any) -> Link:
    """``link_create(*args)``; a refusal goes through ``unsupported(feature, exc)`` (skip or fail, as above)."""
    from bpflink import link_create

    try:
        return link_create(*args)
    except OSError as exc:
        unsupported(feature, exc)
