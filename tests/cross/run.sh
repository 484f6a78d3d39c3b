#!/usr/bin/env bash
# The NEON path on an x86 machine: cross-compile the C core and its C tests
# (tests/c) for 64-bit ARM with ASan + UBSan and run every test program under
# qemu-user, as `make -C c_src test` runs them natively, on the path the
# probe picks (NEON).  The programs themselves switch paths and compare
# every product kernel, every encoder kernel and the encoder's output on
# NEON with the scalar path, bit for bit; the scalar path alone is the one
# LRQ_NO_X86_SIMD builds natively (tests/test_kernels.py).
# Usage: tests/cross/run.sh
# Needs gcc-aarch64-linux-gnu and qemu-user (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
triple=aarch64-linux-gnu
sysroot=/usr/$triple
for tool in "$triple-gcc" qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "cross: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user)"; exit 1; }
done
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

# LeakSanitizer needs ptrace, which qemu-user does not emulate; ASan's
# memory checks and UBSan run as natively.
export ASAN_OPTIONS=detect_leaks=0
jobs=$(nproc 2>/dev/null || echo 2)
make -s --no-print-directory -C c_src -j"$jobs" BUILD="$build" CC="$triple-gcc" \
    RUN="qemu-aarch64 -L $sysroot" LRQ_TEST_ISAS=best test
