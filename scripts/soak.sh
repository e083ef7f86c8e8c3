#!/usr/bin/env bash
# The long soak (#17 point 8), outside CI: the soak test of crates/tether-cli/tests/soak.rs
# for SOAK_SECS (default 1200 = 20 minutes) with a kill -9 every 60 s, writing the samples to
# docs/soak/soak-${SOAK_SECS}s.csv and a plot next to it (.svg). CI runs the 60-second version
# (`cargo test -p tether-cli --test soak`).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${SOAK_SECS:-1200}"
out="docs/soak/soak-${secs}s"
mkdir -p docs/soak
TETHER_SOAK_SECS="$secs" TETHER_SOAK_KILL_SECS="${SOAK_KILL_SECS:-60}" \
TETHER_SOAK_CSV="$PWD/$out.csv" \
    cargo test -p tether-cli --test soak -- --nocapture | tee "$out.log"
python3 scripts/soak_plot.py "$out.csv" "$out.svg" \
    "tether soak: ${secs} s, kill -9 every ${SOAK_KILL_SECS:-60} s, --retention 10s"
echo "samples: $out.csv, plot: $out.svg, figures: $out.log"
