"""The one place bpflink's version is written (build_ffi.py and pyproject.toml read it)."""

__version__ = "0.1.0"
