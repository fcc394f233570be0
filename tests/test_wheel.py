"""Packaging: layouts compiled in equal the C compiler's, the wheel stands alone in a clean Debian root, the sdist
builds against the system's libbpf-dev (and fails clearly without one), the CI workflow is valid.

The wheel and sdist tests are ``wheel`` + ``slow`` (scripts/build-wheel, debootstrap once, a venv build);
the layout test is fast and always runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import bpflink
import layout_check

ROOT = Path(__file__).resolve().parents[1]
LIBBPF = ROOT / "build" / "libbpf"
TOOLS = Path(os.environ.get("BPFLINK_WHEEL_TOOLS", ROOT / "build" / "wheel-tools"))
VERSION = bpflink.__version__


# --- layouts: cffi and the extension's table against a C program over the same headers -----------------------


def test_link_create_opts_layout_matches_c_compiler(tmp_path: Path) -> None:
    """Every member, nested ones too: cffi, the extension's offsetof table and tests/layout_probe.c agree."""
    rows, _size, version = layout_check.c_layout(LIBBPF / "include", tmp_path)
    assert version == bpflink.libbpf_version()  # this checkout's extension was built against these headers
    assert {"sz", "iter_info", "tcx.expected_revision", "uprobe_multi.pid", "netfilter.priority"} <= set(rows)
    assert layout_check.differences(LIBBPF / "include", tmp_path) == []


def test_layout_check_notices_other_headers(tmp_path: Path) -> None:
    """Not vacuous: against the system libbpf-dev's headers (1.4: no cgroup member) it names each difference."""
    system = _system_libbpf()
    if system.startswith(bpflink.libbpf_version() + "."):
        pytest.fail(f"the system libbpf-dev {system} is the bundled version: install bookworm-backports' 1.4")
    problems = layout_check.differences(Path("/usr/include"), tmp_path)
    assert problems[0].startswith(f"headers are libbpf {'.'.join(system.split('.')[:2])}")
    if tuple(int(x) for x in system.split(".")[:2]) < (1, 6):
        assert any(p.startswith("cgroup.relative_fd: extension table (") for p in problems), problems


def test_bundled_build_takes_build_libbpf_headers_first(tmp_path: Path) -> None:
    """A system libbpf-dev in /usr/include (the sdist tests need one) must not leak into the bundled build."""
    probe = tmp_path / "which.c"
    probe.write_text("#include <bpf/bpf.h>\n#include <bpf/libbpf_version.h>\n#include <linux/bpf.h>\n")
    deps = subprocess.run(["cc", "-M", f"-I{LIBBPF / 'include'}", str(probe)], check=True, capture_output=True,
                          text=True).stdout
    wanted = re.compile(r"/(bpf/(bpf|libbpf_version)|linux/bpf)\.h$")
    resolved = {d for d in deps.replace("\\\n", " ").split() if wanted.search(d)}
    assert len(resolved) == 3 and all(d.startswith(str(LIBBPF / "include")) for d in resolved), resolved
    ext = next(Path(bpflink._native.__file__).parent.glob("_ffi*.so"))
    needed = subprocess.run(["readelf", "-d", str(ext)], check=True, capture_output=True, text=True).stdout
    assert "libbpf" not in needed  # libbpf.a is linked in, never the system's libbpf.so


# --- the wheel ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/build-wheel's output (sdist + repaired wheel) in a temp dir."""
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([str(ROOT / "scripts" / "build-wheel")], env={**os.environ, "BPFLINK_DIST": str(out)},
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    print(res.stdout)
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob(f"bpflink-{VERSION}-*.whl")
    return wheel


@pytest.mark.wheel
@pytest.mark.slow
def test_wheel_is_abi3_manylinux_with_libbpf_hidden(dist: Path, tmp_path: Path) -> None:
    wheel = _wheel(dist)
    assert re.fullmatch(rf"bpflink-{re.escape(VERSION)}-cp39-abi3-manylinux_2_\d+_{platform.machine()}\.whl",
                        wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(f"bpflink-{VERSION}.dist-info/METADATA").decode()
        zf.extractall(tmp_path)
    assert re.search(rf"^Version: {re.escape(VERSION)}$", meta, re.M)  # the one version, from _version.py
    assert re.search(r"^Requires-Dist: cffi>=1\.16$", meta, re.M)
    assert any(re.fullmatch(r"bpflink\.libs/libelf[-.\w]*\.so[.\d]*", n) for n in names), names
    assert not any("libbpf" in n for n in names if ".dist-info/licenses/" not in n)  # only its license text
    (ext,) = (tmp_path / "bpflink").glob("_ffi.abi3.so")
    exported = subprocess.run(["nm", "-D", "--defined-only", str(ext)], check=True, capture_output=True,
                              text=True).stdout.split()[2::3]
    assert "PyInit__ffi" in exported
    assert [s for s in exported if s != "PyInit__ffi" and not s.startswith("bpflink_")] == []


@pytest.mark.wheel
@pytest.mark.slow
def test_wheel_links_a_cgroup_in_a_clean_debian_root(dist: Path) -> None:
    """debootstrap minbase + python3-pip, no libbpf/libelf/compiler; a cgroup link drops and counts there."""
    res = subprocess.run([str(ROOT / "scripts" / "test-wheel-chroot"), str(_wheel(dist))], capture_output=True,
                         text=True, timeout=1200)
    print(res.stdout[-3000:], res.stderr[-3000:])
    assert res.returncode == 0, res.stderr
    assert re.search(r"^absent: cc gcc clang ld libbpf libelf", res.stdout, re.M)
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["version"] == VERSION and result["libbpf"] == "1.7"
    assert result["module"].startswith("/usr/local/lib/python3")  # the wheel's copy, not this checkout
    assert result["probe_rc"] == 0 and "cgroup_inet_egress" in res.stdout
    assert result["link_type"] == "CGROUP"
    assert result["before"] == 5 and result["during"] == 0 and result["counted"] >= 5 and result["after"] == 5
    assert str(ROOT / "build" / "wheel-root") not in Path("/proc/mounts").read_text()  # mounts cleaned up


LICENSE_FILES = ("LICENSE", "THIRD_PARTY_NOTICES.md", "licenses/libbpf-BSD-2-Clause.txt",
                 "licenses/libelf-LGPL-3.0.txt", "licenses/libelf-GPL-3.0.txt")


@pytest.mark.wheel
@pytest.mark.slow
def test_wheel_and_sdist_carry_the_license_texts(dist: Path) -> None:
    """PEP 639: the texts in .dist-info/licenses/ and License-File entries; the sdist has them at its root."""
    with zipfile.ZipFile(_wheel(dist)) as zf:
        names = set(zf.namelist())
        meta = zf.read(f"bpflink-{VERSION}.dist-info/METADATA").decode()
        for name in LICENSE_FILES:
            assert f"bpflink-{VERSION}.dist-info/licenses/{name}" in names, name
            assert zf.read(f"bpflink-{VERSION}.dist-info/licenses/{name}") == (ROOT / name).read_bytes()
        # what the notices say the wheel bundles is what it bundles
        assert any(n.startswith("bpflink.libs/libelf") for n in names)
        assert not any(n.startswith("bpflink.libs/libz") for n in names)
    assert re.search(r"^Metadata-Version: 2\.[4-9]$", meta, re.M)
    assert re.search(r"^License-Expression: MIT AND BSD-2-Clause AND \(LGPL-3\.0-or-later OR GPL-2\.0-or-later\)$",
                     meta, re.M)
    assert sorted(re.findall(r"^License-File: (.+)$", meta, re.M)) == sorted(LICENSE_FILES)
    with tarfile.open(dist / f"bpflink-{VERSION}.tar.gz") as tf:
        for name in LICENSE_FILES:
            member = tf.extractfile(f"bpflink-{VERSION}/{name}")
            assert member is not None and member.read() == (ROOT / name).read_bytes(), name
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text()
    assert "libbpf 1.7.0" in notices and "BSD-2-Clause terms" in notices and "LGPL-3.0-or-later" in notices
    assert "Copyright (c) 2015 The Libbpf Authors" in (ROOT / "licenses/libbpf-BSD-2-Clause.txt").read_text()


@pytest.mark.wheel
@pytest.mark.slow
def test_twine_check_passes_on_wheel_and_sdist(dist: Path) -> None:
    """What PyPI checks on upload: the long description renders, the metadata fields are valid."""
    twine = [sys.executable, "-m", "twine"]
    res = subprocess.run([*twine, "check", "--strict", str(_wheel(dist)), str(dist / f"bpflink-{VERSION}.tar.gz")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("PASSED") == 2, res.stdout


@pytest.mark.hostonly
def test_metadata_classifiers_are_pypis() -> None:
    """Every classifier is one PyPI accepts; Python 3.9-3.14 named; no License classifier beside the PEP 639
    expression (setuptools and PyPI refuse both)."""
    import tomllib  # 3.11+; this test runs in .venv
    from trove_classifiers import classifiers as known

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["classifiers"]) <= known, set(project["classifiers"]) - known
    assert [c for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")] == [
        f"Programming Language :: Python :: 3.{m}" for m in range(9, 15)]
    assert not any(c.startswith("License ::") for c in project["classifiers"])
    assert project["requires-python"] == ">=3.9"
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), pattern
    assert {"Development Status :: 4 - Beta", "Operating System :: POSIX :: Linux"} <= set(project["classifiers"])
    assert project["keywords"] and project["urls"]


@pytest.mark.wheel
@pytest.mark.slow
def test_wheel_on_the_newest_debian_python(dist: Path) -> None:
    """The one cp39-abi3 wheel installed and run on Debian forky's CPython (3.14 when this was written): a clean
    minbase root again, a cgroup link drops and counts there."""
    res = subprocess.run([str(ROOT / "scripts" / "test-wheel-chroot"), "--suite", "forky", str(_wheel(dist))],
                         capture_output=True, text=True, timeout=1200)
    print(res.stdout[-3000:], res.stderr[-3000:])
    assert res.returncode == 0, res.stderr
    python = re.search(r"^absent: cc gcc clang ld libbpf libelf \(python (3\.(\d+))", res.stdout, re.M)
    assert python and int(python.group(2)) >= 14, res.stdout
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["version"] == VERSION and result["libbpf"] == "1.7"
    assert result["module"].startswith(f"/usr/local/lib/python{python.group(1)}/")
    assert result["before"] == 5 and result["during"] == 0 and result["counted"] >= 5 and result["after"] == 5


# --- the sdist --------------------------------------------------------------------------------------------------


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_ships_sources_not_build_or_scripts(dist: Path) -> None:
    with tarfile.open(dist / f"bpflink-{VERSION}.tar.gz") as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"build_ffi.py", "setup.py", "pyproject.toml", "include/link.h", "include/shims.c",
            "src/bpflink/__init__.py", "src/bpflink/_version.py", "src/bpflink/py.typed"} <= names
    assert {f"include/{p.name}" for p in (ROOT / "include").iterdir()} <= names
    # without scripts/build-libbpf, build_ffi.py defaults to the system libbpf
    assert not any(n.startswith(("build/", "scripts/", "tests/")) or n.endswith(".so") for n in names)


@pytest.fixture(scope="module")
def sdist_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("sdist-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "setuptools>=77", "cffi>=1.16", "wheel"],
                   check=True, capture_output=True)
    return venv


def _system_libbpf() -> str:
    res = subprocess.run(["pkg-config", "--modversion", "libbpf"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail("no system libbpf-dev: apt-get install -t bookworm-backports libbpf-dev (1.4.x)")
    return res.stdout.strip()


SDIST_CHECK = """
import os, bpflink
from bpflink import AttachType, ProgType, Program, asm, link_create, opts
print(bpflink.libbpf_version())
cg = os.environ["CG"]
with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=AttachType.CGROUP_INET_EGRESS) as p:
    with link_create(p, cg, AttachType.CGROUP_INET_EGRESS) as link:
        print(link.info().type.name)
    try:
        link_create(p, cg, AttachType.CGROUP_INET_EGRESS, opts.Cgroup(expected_revision=1))
    except bpflink.NotSupportedError as exc:
        print("NotSupportedError:", exc)
"""


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_builds_against_system_libbpf(dist: Path, sdist_venv: Path, cgroup: Path) -> None:
    """BPFLINK_LIBBPF unset: pip builds the sdist (isolated build) against libbpf-dev >= 1.4 via pkg-config."""
    system = _system_libbpf()
    env = {k: v for k, v in os.environ.items() if k != "BPFLINK_LIBBPF"}
    res = subprocess.run([str(sdist_venv / "bin" / "pip"), "install", "-q", "--force-reinstall", "--no-deps",
                          str(dist / f"bpflink-{VERSION}.tar.gz")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([str(sdist_venv / "bin" / "python"), "-c", SDIST_CHECK], env={**env, "CG": str(cgroup)},
                         cwd="/", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    version, link_type, refused = res.stdout.splitlines()
    assert version == ".".join(system.split(".")[:2])
    assert link_type == "CGROUP"
    if tuple(int(x) for x in version.split(".")) < (1, 6):  # cgroup link ordering is libbpf 1.6's
        assert refused.startswith("NotSupportedError:") and "struct bpf_link_create_opts.cgroup" in refused
    ext = next((sdist_venv / "lib").glob("python3*/site-packages/bpflink/_ffi*.so"))
    needed = subprocess.run(["readelf", "-d", str(ext)], check=True, capture_output=True, text=True).stdout
    assert "libbpf.so.1" in needed  # the system's shared libbpf, not a bundled copy


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_without_libbpf_fails_clearly(dist: Path, sdist_venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # PKG_CONFIG_LIBDIR replaces pkg-config's default search path, PKG_CONFIG_PATH alone only prepends to it
    env = {**{k: v for k, v in os.environ.items() if k != "BPFLINK_LIBBPF"},
           "PKG_CONFIG_PATH": str(empty), "PKG_CONFIG_LIBDIR": str(empty), "CPATH": str(empty)}
    res = subprocess.run([str(sdist_venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-deps",
                          "--force-reinstall", str(dist / f"bpflink-{VERSION}.tar.gz")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0
    assert "bpflink build: no system libbpf found (pkg-config libbpf failed)" in res.stdout + res.stderr
    assert "apt-get install -t bookworm-backports libbpf-dev" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def bookworm_libbpf_1_1() -> Path:
    """Debian bookworm's own libbpf-dev (1.1), unpacked (never installed) under build/wheel-root."""
    root = ROOT / "build" / "wheel-root" / "libbpf-dev-bookworm"
    if not (root / "usr" / "include" / "bpf" / "libbpf_version.h").exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-qq", "libbpf-dev/bookworm"], cwd=root.parent, check=True,
                       capture_output=True)
        (deb,) = root.parent.glob("libbpf-dev_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_with_libbpf_older_than_1_4_fails_early(dist: Path, sdist_venv: Path, bookworm_libbpf_1_1: Path) -> None:
    (pc_dir,) = {p.parent for p in bookworm_libbpf_1_1.glob("usr/lib/*/pkgconfig/libbpf.pc")}
    # pkg-config finds the unpacked libbpf.pc first and puts the sysroot in front of its -I
    env = {**{k: v for k, v in os.environ.items() if k != "BPFLINK_LIBBPF"},
           "PKG_CONFIG_PATH": str(pc_dir), "PKG_CONFIG_SYSROOT_DIR": str(bookworm_libbpf_1_1)}
    res = subprocess.run([str(sdist_venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-deps",
                          "--force-reinstall", str(dist / f"bpflink-{VERSION}.tar.gz")],
                         env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    # refused while preparing metadata, before any C is compiled
    assert re.search(r"bpflink build: system libbpf 1\.[0-3] is older than 1\.4: install libbpf-dev >= 1\.4", out), out
    assert "_ffi.c" not in out


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_from_a_clean_clone_compiles_nothing(tmp_path: Path) -> None:
    """python -m build --sdist needs no libbpf and no compiler: with CC=false and a libbpf prefix that does not
    exist, any run of build_ffi.py (or of scripts/build-libbpf) would fail the build."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    python = TOOLS / "bin" / "python"  # the tools venv scripts/build-wheel made (build, setuptools >= 77)
    env = {**os.environ, "CC": "false", "BPFLINK_LIBBPF": str(tmp_path / "no-libbpf")}
    res = subprocess.run([str(python), "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path / "out"),
                          str(clone)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "out" / f"bpflink-{VERSION}.tar.gz").exists()
    assert "bpflink build:" not in res.stdout + res.stderr
    built = [p for p in clone.rglob("*") if p.suffix in {".so", ".o", ".a"} or p.name == "_ffi.c"]
    assert built == [] and not (clone / "build").exists(), built


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_builds_and_links_in_a_clean_bookworm_root(dist: Path) -> None:
    """The packager's path: a debootstrapped bookworm root with only the README's build packages; pip builds the
    sdist there (isolated) against libbpf-dev 1.4 and bookworm-backports' uapi headers; a cgroup link fires."""
    res = subprocess.run([str(ROOT / "scripts" / "test-wheel-chroot"), "--sdist",
                          str(dist / f"bpflink-{VERSION}.tar.gz")], capture_output=True, text=True, timeout=1200)
    print(res.stdout[-3000:], res.stderr[-3000:])
    assert res.returncode == 0, res.stderr
    packages = dict(p.split("=", 1) for p in re.search(r"^packages: (.*)$", res.stdout, re.M).group(1).split())
    assert packages["libbpf-dev"].startswith("1:1.4.") and "bpo12" in packages["linux-libc-dev"]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["version"] == VERSION and result["libbpf"] == "1.4"  # the system's shared libbpf
    assert result["module"].startswith("/venv/lib/python3")
    assert result["link_type"] == "CGROUP"
    assert result["before"] == 5 and result["during"] == 0 and result["counted"] >= 5 and result["after"] == 5
    assert str(ROOT / "build" / "wheel-root") not in Path("/proc/mounts").read_text()


def _deb_unpacked(package: str, version: str) -> Path:
    """A Debian package unpacked (never installed) under build/wheel-root, fetched from the mirror apt's index
    names, sha256-checked."""
    root = ROOT / "build" / "wheel-root" / f"{package}-{version}"
    if not root.exists():
        show = subprocess.run(["apt-cache", "show", f"{package}={version}"], capture_output=True, text=True,
                              check=True).stdout
        filename = re.search(r"^Filename: (.+)$", show, re.M).group(1)
        sha256 = re.search(r"^SHA256: (.+)$", show, re.M).group(1)
        deb = root.parent / Path(filename).name
        mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
        subprocess.run(["curl", "-fsSL", "--retry", "3", "-o", str(deb), f"{mirror}/{filename}"], check=True,
                       timeout=300)
        subprocess.run(["sha256sum", "-c", "--quiet", "-"], input=f"{sha256}  {deb}\n", text=True, check=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        deb.unlink()
    return root


OLD_UAPI_CHECK = """
import os, bpflink
from bpflink import AttachType, MprogFlags, ProgType, Program, _native, asm, link_create, opts
print(sorted(_native.ABSENT))
cg = os.environ["CG"]
with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=AttachType.CGROUP_INET_EGRESS) as p:
    with link_create(p, cg, AttachType.CGROUP_INET_EGRESS) as link:
        print(link.info().type.name)
    try:
        MprogFlags.BEFORE | MprogFlags.ID
    except bpflink.NotSupportedError as exc:
        print("NotSupportedError:", exc)
"""


@pytest.mark.wheel
@pytest.mark.slow
def test_sdist_with_bookworm_uapi_headers_adapts(dist: Path, sdist_venv: Path, cgroup: Path) -> None:
    """bookworm's own linux-libc-dev (6.1) lacks bpf_link_info members and flags bpflink declares: the build names
    them as absent (no compiler wall), the extension works, and a feature needing one raises NotSupportedError
    naming the header."""
    versions = subprocess.run(["apt-cache", "madison", "linux-libc-dev"], capture_output=True, text=True).stdout
    # bookworm's release pocket (the security pocket lives on another mirror)
    old = re.search(r"\|\s*(6\.1\.\d+-\d+)\s*\|\s*\S+/debian bookworm/main ", versions)
    if not old:
        pytest.fail("apt's index has no linux-libc-dev 6.1 (bookworm) to try")
    headers = _deb_unpacked("linux-libc-dev", old.group(1)) / "usr" / "include"
    # CPATH comes before /usr/include: <linux/bpf.h> and <asm/...> resolve to the 6.1 copies
    env = {**{k: v for k, v in os.environ.items() if k != "BPFLINK_LIBBPF"},
           "CPATH": f"{headers}:{headers / (platform.machine() + '-linux-gnu')}"}
    res = subprocess.run([str(sdist_venv / "bin" / "pip"), "install", "-v", "--no-build-isolation", "--no-deps",
                          "--force-reinstall", str(dist / f"bpflink-{VERSION}.tar.gz")],
                         env=env, capture_output=True, text=True, timeout=900)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    assert re.search(r"bpflink build: absent, its features raise NotSupportedError: struct bpf_link_info\.tcx: "
                     r"\S+/linux/bpf\.h has no member tcx", out), out[-5000:]
    assert out.count("has no member named") == 0  # no compiler wall
    res = subprocess.run([str(sdist_venv / "bin" / "python"), "-c", OLD_UAPI_CHECK],
                         env={**env, "CG": str(cgroup)}, cwd="/", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    absent, link_type, refused = res.stdout.splitlines()
    assert "'struct bpf_link_info.netfilter'" in absent and "'BPF_F_BEFORE'" in absent
    assert link_type == "CGROUP"
    assert refused.startswith("NotSupportedError:") and "BPF_F_BEFORE" in refused and "linux/bpf.h" in refused


# --- CI ---------------------------------------------------------------------------------------------------------


def test_wheels_workflow_is_valid() -> None:
    """The workflow against the GitHub workflow JSON schema (check-jsonschema's vendored copy, no network)."""
    checker = TOOLS / "bin" / "check-jsonschema"
    if not checker.exists():  # the tools venv scripts/build-wheel makes; kept out of .venv
        if not (TOOLS / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", "check-jsonschema"], check=True)
    workflow = ROOT / ".github" / "workflows" / "wheels.yml"
    res = subprocess.run([str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    text = workflow.read_text()
    assert "id-token: write" in text and "pypa/gh-action-pypi-publish" in text
    import tomllib  # 3.11+; this test runs in .venv

    cibw = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    assert cibw["manylinux-x86_64-image"] == cibw["manylinux-aarch64-image"] == "manylinux_2_28"
    assert [f"cp3{m}-manylinux_*" for m in range(9, 15)] == cibw["build"].split()
    assert cibw["environment"] == {"BPFLINK_LIBBPF": "/opt/libbpf"}
    commands = cibw["before-all"] + " " + cibw["test-command"]
    for path in re.findall(r"(?:\{project\}/)?((?:scripts|tests)/[\w./-]+)", commands):
        assert (ROOT / path).exists(), path
    before_all = (ROOT / "scripts" / "cibw-before-all.sh").read_text()
    sha = re.search(r"^SHA256=([0-9a-f]{64})$", before_all, re.M)
    assert sha and re.search(r"^VERSION=1\.7\.0$", before_all, re.M)
