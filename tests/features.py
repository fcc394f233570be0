"""Honest skips. A test that hits a refusal calls ``unsupported(feature, exc)``: it skips only when the
kernel is older than the feature's minimum or its config option is off (the probed reason is in the skip
message); otherwise the refusal is a bug and the test fails."""

from __future__ import annotations

from typing import NoReturn

import pytest

from bpflink.errors import errno_name
from bpflink.features import FEATURES, explain


def unsupported(feature: str, exc: BaseException, *, extra_reason: str | None = None) -> NoReturn:
    """Skip with the probed reason when the kernel lacks ``feature``; fail when it should have it.

    ``extra_reason``: another detected cause (e.g. "kernel lockdown refuses tracing program loads"), given only
    when the test established it by probing.
    """
    code = errno_name(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
    why = explain(feature) or extra_reason
    if why:
        pytest.skip(f"{feature} not available here: {why} (kernel answered {code})")
    pytest.fail(
        f"{feature} refused ({code}: {exc}) although the kernel is >= {FEATURES[feature].min_kernel_str} "
        "and its config options are on: the probe or bpflink is wrong"
    )
