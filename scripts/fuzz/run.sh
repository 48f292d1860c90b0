#!/usr/bin/env bash
# Runs both fuzz targets for SECONDS each (default 60) from the committed seed corpora.
# New inputs go to .build-fuzz/corpus/<target> (not the committed seeds); crashes to
# .build-fuzz/crashes/<target>/. Exit status non-zero when a target crashed.
#   scripts/fuzz/build.sh && scripts/fuzz/run.sh 60
set -euo pipefail
# The Swift backtracer hangs on a sanitizer crash; libFuzzer reports crashes itself.
export SWIFT_BACKTRACE=enable=no
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
BIN=.build-fuzz/release
status=0
for pair in ApplyFuzz:apply ParseFuzz:parse; do
    target=${pair%%:*}; seeds=Fuzz/corpus/${pair##*:}
    work=.build-fuzz/corpus/$target crashes=.build-fuzz/crashes/$target
    mkdir -p "$work" "$crashes"
    dict=()
    [ -f "Fuzz/${pair##*:}.dict" ] && dict=(-dict="Fuzz/${pair##*:}.dict")
    echo "== $target for ${SECONDS_EACH}s"
    ASAN_OPTIONS=detect_leaks=0 "$BIN/$target" "$work" "$seeds" "${dict[@]}" \
        -max_total_time="$SECONDS_EACH" -max_len=262144 -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | tail -n 25 || status=1
done
exit $status
