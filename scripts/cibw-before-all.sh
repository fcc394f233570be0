#!/bin/bash
# scripts/cibw-before-all.sh -- cibuildwheel's before-all, run once per manylinux_2_28 container (AlmaLinux 8):
# libelf and zlib from the image's repositories, then libbpf 1.7.0 built static (-fPIC) from its upstream
# release tarball (sha256-pinned) into $LIBBPF_PREFIX (default /opt/libbpf), where [tool.cibuildwheel]'s
# BPFLINK_LIBBPF=/opt/libbpf points build_ffi.py.
#
# The pin is the one scripts/build-libbpf checks: Debian's libbpf_1.7.0.orig.tar.gz is the upstream tag's
# archive, unmodified (its debian/watch fetches it from the upstream tags), so either download below gives the
# same bytes; the first download with the right checksum is used.
# Unlike scripts/build-libbpf, all of libbpf's uapi headers are installed (not only bpf.h, bpf_common.h, btf.h):
# AlmaLinux 8's kernel-headers are 4.18, too old for <linux/if_link.h> and <linux/perf_event.h> as bpflink uses them.
# Works on Debian too (apt-get instead of dnf), which is how it is tried outside CI.
set -euo pipefail
VERSION=1.7.0
SHA256=7ab5feffbf78557f626f2e3e3204788528394494715a30fc2070fcddc2051b7b
# LIBBPF_UPSTREAM_URL: the upstream tag's archive, set by .github/workflows/wheels.yml
URLS=(${LIBBPF_UPSTREAM_URL:+"$LIBBPF_UPSTREAM_URL"} "http://deb.debian.org/debian/pool/main/libb/libbpf/libbpf_$VERSION.orig.tar.gz")
PREFIX=${LIBBPF_PREFIX:-/opt/libbpf}

if command -v dnf >/dev/null; then
  dnf install -y -q elfutils-libelf-devel zlib-devel pkgconf-pkg-config
elif command -v apt-get >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq libelf-dev zlib1g-dev pkg-config >/dev/null
fi

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
TARBALL="$WORK/libbpf-$VERSION.tar.gz"
for url in "${URLS[@]}"; do
  if curl -fsSL --retry 3 -o "$TARBALL" "$url" && echo "$SHA256  $TARBALL" | sha256sum -c --quiet -; then
    echo "cibw-before-all: libbpf $VERSION from $url (sha256 ok)"; break
  fi
  rm -f "$TARBALL"
done
[ -f "$TARBALL" ] || { echo "cibw-before-all: no download of libbpf $VERSION matched sha256 $SHA256" >&2; exit 1; }

tar -xzf "$TARBALL" -C "$WORK"
SRC="$WORK/libbpf-$VERSION"
rm -rf "$PREFIX"; mkdir -p "$PREFIX/include/linux"
make -s -C "$SRC/src" -j"$(nproc)" BUILD_STATIC_ONLY=1 CFLAGS="-O2 -fPIC -g0" \
  PREFIX=/ LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include DESTDIR="$PREFIX" install install_uapi_headers >/dev/null
cp "$SRC"/include/uapi/linux/*.h "$PREFIX/include/linux/"
echo "cibw-before-all: libbpf $VERSION -> $PREFIX ($(du -h "$PREFIX/lib/libbpf.a" | cut -f1) libbpf.a," \
     "$(ls "$PREFIX/include/linux" | wc -l) uapi headers)"
