"""The cffi hook only: metadata lives in pyproject.toml, the extension is described by build_ffi.py."""

import sys

from setuptools import setup

# cffi compiles CPython extensions against the stable ABI (Py_LIMITED_API, hence _ffi.abi3.so), so one
# cp39-abi3 wheel per architecture serves CPython 3.9 and every later 3.x. Not for PyPy or debug builds,
# where cffi does not use the limited API.
STABLE_ABI = sys.implementation.name == "cpython" and not hasattr(sys, "gettotalrefcount")

setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if STABLE_ABI else {},
)
