"""The build hooks only: metadata lives in pyproject.toml, the cffi extension is described by build_ffi.py."""

import sys

from setuptools import Extension, setup

# cffi compiles CPython extensions against the stable ABI (Py_LIMITED_API, hence _ffi.abi3.so), so one
# cp39-abi3 wheel per architecture serves CPython 3.9 and every later 3.x. Not for PyPy or debug builds,
# where cffi does not use the limited API.
STABLE_ABI = sys.implementation.name == "cpython" and not hasattr(sys, "gettotalrefcount")

# bpflink._fdowner: the C base of the fd owners (include/fdowner.c), plain CPython C API, stable ABI too
FDOWNER = Extension(
    "bpflink._fdowner", sources=["include/fdowner.c"], extra_compile_args=["-O2"],
    py_limited_api=STABLE_ABI, define_macros=[("Py_LIMITED_API", "0x03090000")] if STABLE_ABI else [],
)

# cffi runs build_ffi.py (which finds, or builds, libbpf and preprocesses its headers) as soon as setup() sees
# cffi_modules, whatever the command. Producing an sdist or metadata must compile nothing and need no libbpf,
# so the cffi module is declared only for the commands that build or install the extension.
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "bdist_egg", "install", "develop", "editable_wheel"}
BUILDS = bool(BUILD_COMMANDS & set(sys.argv[1:]))

setup(
    cffi_modules=["build_ffi.py:ffibuilder"] if BUILDS else [],
    ext_modules=[FDOWNER],
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if STABLE_ABI else {},
)
