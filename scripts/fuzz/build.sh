#!/usr/bin/env bash
# Builds the libFuzzer targets ApplyFuzz and ParseFuzz (release, -sanitize=fuzzer,address) into
# .build-fuzz/release/. The normal build makes the same targets as plain reproducers
# (.build/debug/ApplyFuzz FILE…); here -DFUZZING swaps their @main for LLVMFuzzerTestOneInput and
# a `<target>_main` entry point (what SwiftPM runs) that hands over to libFuzzer's driver
# (FuzzSupport.runLibFuzzer). Fuzzing runs as root, like make test: ApplyFuzz removes each input's
# box with StrataSystem's removeTree, which relies on root to enter directories a tar made 0000.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
SCRATCH=.build-fuzz
# Reuse the dependency checkouts of the normal build (no network needed).
if [ -d .build/checkouts ] && [ ! -d "$SCRATCH/checkouts" ]; then
    mkdir -p "$SCRATCH"
    cp -a .build/checkouts .build/repositories .build/workspace-state.json "$SCRATCH"/ 2>/dev/null || true
fi
for product in ApplyFuzz ParseFuzz; do
    "$SWIFT" build -c release --scratch-path "$SCRATCH" --product "$product" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
done
echo "built: $SCRATCH/release/ApplyFuzz $SCRATCH/release/ParseFuzz"
