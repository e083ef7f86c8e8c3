#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for a bounded time, one after the other.
#
#   scripts/fuzz.sh                 # each target for 60 s
#   FUZZ_SECONDS=300 scripts/fuzz.sh journal_replay http_request
#
# Needs only a stable toolchain: cargo-fuzz is installed if missing, RUSTC_BOOTSTRAP=1 lets
# stable accept the nightly flags it passes. No sanitizer by default (`-s none`; set
# FUZZ_SANITIZER=address where the toolchain ships ASan); debug assertions are on, so integer
# overflow is a crash. A crash stops the script with a non-zero exit; the input is in
# fuzz/artifacts/<target>/. Keep it: copy it to fuzz/regressions/<target>/ and the normal
# `cargo test -p tether-server --test fuzz_regressions` runs it from then on.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(body_decode journal_replay names webhook_request http_request)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    echo "fuzz.sh: ${target} for ${seconds} s" >&2
    mkdir -p "corpus/${target}"
    # The saved regressions seed the corpus.
    if [ -d "regressions/${target}" ]; then
        cp -n regressions/"${target}"/* "corpus/${target}/" 2>/dev/null || true
    fi
    nice cargo fuzz run -a -s "${sanitizer}" "${target}" -- \
        -max_total_time="${seconds}" -rss_limit_mb=2048 -max_len=262144
done
echo "fuzz.sh: no crash in ${targets[*]}" >&2
