"""The cffi hook only: metadata lives in pyproject.toml, the extension is described by build_ffi.py."""

from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
