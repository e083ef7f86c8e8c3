#!/usr/bin/env bash
# Run the Python client's tests against a real `tether dev`.
# The server binary comes from env TETHER_BIN (default: the workspace's target/debug/tether,
# built by `cargo build -p tether-cli`). Extra arguments go to pytest.
# Exit code: pytest's.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# (Re)install when the venv is new or pyproject.toml changed since the last install.
stamp=.venv/.tether-client-installed
want="$(cksum < pyproject.toml)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
    printf '%s\n' "$want" > "$stamp"
fi

if [ -z "${TETHER_BIN:-}" ] && [ -x ../../target/debug/tether ]; then
    TETHER_BIN="$(cd ../.. && pwd)/target/debug/tether"
    export TETHER_BIN
fi

set +e
.venv/bin/python -m pytest -q "$@"
status=$?
exit "$status"
