#!/usr/bin/env bash
# OpenAPI-driven fuzz of `aiconform serve` with schemathesis, against 127.0.0.1 only and
# bounded in examples and time. The always-on fuzz is `cargo test --test server_fuzz`; this
# script is the optional, broader one (negative data, conformance checks).
#
#   ci/fuzz-api.sh                 build, start the server on a free port, fuzz, stop it
#   AICONFORM_BIN=path ci/fuzz-api.sh      use an existing binary
#   FUZZ_MAX_EXAMPLES=50 FUZZ_MAX_TIME=120 FUZZ_CHECKS=not_a_server_error,...  tune it
#
# schemathesis is installed with pip into a private venv on first use (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${FUZZ_MAX_EXAMPLES:-50}"
max_time="${FUZZ_MAX_TIME:-180}"
checks="${FUZZ_CHECKS:-all}"
venv="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/aiconform/schemathesis-venv}"

if [[ ! -x "$venv/bin/schemathesis" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet schemathesis
fi

bin="${AICONFORM_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build --locked --bin aiconform
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/aiconform"
fi

log="$(mktemp)"
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
"$bin" serve --listen 127.0.0.1:0 --timeout 10s --max-body 256KiB >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  sleep 0.1
done
addr="$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -n1)"
if [[ -z "$addr" ]]; then
  echo "server did not start:" >&2
  cat "$log" >&2
  exit 1
fi
echo "fuzzing $addr (max $max_examples examples per operation, $max_time s, checks: $checks)"

status=0
NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 "$venv/bin/schemathesis" --config-file ci/fuzz-api.toml \
  run "$addr/openapi.json" \
  --checks "$checks" \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --workers 2 \
  --request-timeout 20 \
  --suppress-health-check too_slow \
  || status=$?

kill -TERM "$pid"
wait "$pid" || { echo "server exited with $? after SIGTERM" >&2; status=1; }
trap 'rm -f "$log"' EXIT
exit "$status"
