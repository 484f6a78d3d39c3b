#!/usr/bin/env bash
# Build the libFuzzer harnesses with ASan + UBSan and run each for a while,
# seeded with the conformance vectors.  Usage: tests/fuzz/run.sh [SECONDS]
# Needs clang (Debian: apt-get install clang).  Exits non-zero on any crash
# or sanitizer report; prints libFuzzer's execution count.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cc=$(command -v clang || command -v clang-14 || true)
[ -n "$cc" ] || { echo "fuzz: clang not found (apt-get install clang)"; exit 1; }

# Sources and flags from the one build description, c_src/Makefile.
var() { make -s --no-print-directory -C c_src "print-$1"; }
sources=$(var LRQ_SOURCES | tr ' ' '\n' | sed 's|^|c_src/|')
includes=$(var LRQ_INCLUDE_DIRS | tr ' ' '\n' | sed 's|^|-Ic_src/|')
# shellcheck disable=SC2046,SC2086
build() { "$cc" $(var LRQ_CFLAGS) $(var LRQ_FUZZ_CFLAGS) $includes "$@" $sources $(var LRQ_LDFLAGS) $(var LRQ_LIBS); }

for harness in tests/fuzz/fuzz_*.c; do
    name=$(basename "$harness" .c)
    build "$harness" -o "$work/$name"
    mkdir -p "$work/corpus-$name"
    # Seeds: every valid vector as a whole file (even first byte = whole-file
    # mode), and its header alone (odd first byte = header mode, its higher
    # bits the file's required features: the group vectors' headers reach
    # the group rules of spec §10.4 this way).
    for f in conformance/v1/valid/*.lrq; do
        { printf '\0'; cat "$f"; } > "$work/corpus-$name/$(basename "$f")"
        header_length=$(od -An -tu8 -j32 -N8 "$f" | tr -d ' ')
        required=$(od -An -tu1 -j16 -N1 "$f" | tr -d ' ')
        mode=$(printf '%03o' $(( (1 | (required & 3) << 1) )))
        { printf "\\$mode"; head -c $((64 + header_length)) "$f" | tail -c "$header_length"; } \
            > "$work/corpus-$name/header-$(basename "$f")"
    done
    echo "fuzz: $name for ${seconds}s"
    status=0
    "$work/$name" -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
        "$work/corpus-$name" > "$work/$name.log" 2>&1 || status=$?
    grep -E "stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY|^Done" "$work/$name.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$work/$name.log"
        echo "fuzz: $name FAILED (exit $status)"
        exit 1
    fi
done
