#!/usr/bin/env bash
# The NEON path on an x86 machine: cross-compile the C core and its C tests
# (tests/c) for 64-bit ARM and run them under qemu-user, as
# `make -C c_src test` runs them natively, on the path the probe picks
# (NEON).  The programs themselves switch paths and compare every product
# kernel, every encoder kernel and the encoder's output on NEON with the
# scalar path, bit for bit; the scalar path alone is what LRQ_NO_X86_SIMD
# builds natively (tests/test_kernels.py).
#
# Usage: tests/cross/run.sh           every test program, under ASan + UBSan
#        tests/cross/run.sh --quick   the three programs that compare paths,
#                                     without sanitizers (tests/test_neon.py)
# Needs gcc-aarch64-linux-gnu and qemu-user (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
triple=aarch64-linux-gnu
for tool in "$triple-gcc" qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "cross: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user)"; exit 1; }
done
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

args=()
if [ "${1:-}" = "--quick" ]; then
    args=(LRQ_TESTS="test_encoder_kernels test_kernels test_encoder" LRQ_TEST_CFLAGS="-O1 -Wall -Wextra -Werror")
fi
# LeakSanitizer needs ptrace, which qemu-user does not emulate; ASan's
# memory checks and UBSan work as natively.
export ASAN_OPTIONS=detect_leaks=0
make -s --no-print-directory -C c_src -j"$(nproc 2>/dev/null || echo 2)" BUILD="$build" CC="$triple-gcc" \
    RUN="qemu-aarch64 -L /usr/$triple" LRQ_TEST_ISAS=best "${args[@]}" test
