#!/usr/bin/env bash
# The benchmark suite in one command: builds the release binary, seeds (or reuses) the
# databases under target/bench/, starts the server and prints the table. See bench/bench.py
# for the options (BENCH_USERS, BENCH_RUNS, BENCH_SECONDS, BENCH_ONLY, ...).
# Needs wrk (Debian: apt-get install wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing: apt-get install wrk" >&2
    exit 1
  fi
fi
cargo build --release --quiet
exec python3 bench/bench.py "$@"
