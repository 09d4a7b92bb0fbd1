#!/usr/bin/env bash
# Kill soak: crawls the lab once without interruption (the reference), then crawls it
# again and SIGKILLs that crawl at KILLS random moments, resuming it each time, and at the
# end compares the two runs' exports, timings excluded (scripts/recordsdiff.py).
#
#   sudo flock /tmp/v6matrix-lab.lock scripts/killsoak.sh [KILLS] [SEED]
#
# Needs root (the lab). Uses its own lab prefix (V6M_SOAK_PREFIX, default v6ks<pid>-), so
# that it never touches another lab, and removes it at the end. Takes about 5 minutes
# with 20 kills. Exit status 0 when the exports match. docs/TESTING.md describes it.
set -euo pipefail
kills="${1:-20}"
seed="${2:-$RANDOM}"
prefix="${V6M_SOAK_PREFIX:-v6ks$$-}"
cd "$(dirname "$0")/.."
work="$(mktemp -d /tmp/v6matrix-killsoak-XXXXXX)"
bin="$work/v6matrix"
go build -o "$bin" ./cmd/v6matrix
log() { echo "killsoak: $*" >&2; }

cleanup() {
  "$bin" lab down --prefix "$prefix" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The reference: the demo with its lab left up (--keep) for the killed crawl.
"$bin" demo --prefix "$prefix" --out "$work/ref" --keep >"$work/ref.log" 2>&1 || {
  log "reference crawl failed:"; cat "$work/ref.log" >&2; exit 1; }
log "reference crawl done ($work/ref)"

ref="$work/ref"
db="$work/killed.db"
resolver="$(sed -n 's/^.*--resolver \([^ ]*\) .*$/\1/p' "$work/ref.log" | head -1)"
allow="$(sed -n 's/^.*--allow-ranges \([^ ]*\) .*$/\1/p' "$work/ref.log" | head -1)"
crawl=("$bin" crawl --db "$db" --resolver "$resolver" --allow-ranges "$allow" --tls-roots "$ref/lab-ca.pem"
  --geoip-city "$ref/v6matrix-test-city.mmdb" --geoip-asn "$ref/v6matrix-test-asn.mmdb"
  --ehlo-name crawler.v6matrix.lab --quiet)
resume=("$bin" crawl --db "$db" --resume --quiet)

RANDOM="$seed"
log "seed $seed: $kills kills"
args=("${crawl[@]}" "$ref/lab-domains.csv")
for i in $(seq 1 "$kills"); do
  # The crawl runs in its own process group (setsid) so that SIGKILL reaches lab exec
  # and the crawl under it at once, as a power cut would.
  setsid "$bin" lab exec --prefix "$prefix" -- "${args[@]}" >>"$work/killed.log" 2>&1 &
  pid=$!
  # A random moment within the first 6 s of this attempt (the lab crawl takes about a
  # minute, most of it the probe stage).
  ms=$((RANDOM % 6000 + 50))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    state="$("$bin" runs --db "$db" 2>/dev/null | awk 'NR==2 {print $4 " " $8 "/" $7}')"
    log "kill $i after ${ms} ms: run $state"
  else
    wait "$pid" || { log "attempt $i failed:"; tail -20 "$work/killed.log" >&2; exit 1; }
    log "attempt $i finished before its kill (${ms} ms)"
    break
  fi
  # Until the run exists (killed before it was created), start it again.
  if "$bin" runs --db "$db" 2>/dev/null | awk 'END {exit NR < 2}'; then
    args=("${resume[@]}")
  fi
done
if "$bin" runs --db "$db" | awk 'NR==2 {exit !($4 != "done")}'; then
  "$bin" lab exec --prefix "$prefix" -- "${resume[@]}" >>"$work/killed.log" 2>&1 || {
    log "final resume failed:"; tail -20 "$work/killed.log" >&2; exit 1; }
fi
"$bin" export --db "$db" --out "$work/killed" >/dev/null
"$bin" runs --db "$ref/v6matrix.db" >&2
"$bin" runs --db "$db" >&2
if python3 scripts/recordsdiff.py "$ref/records" "$work/killed"; then
  log "PASS: the killed and resumed crawl exported the same records as the reference ($work)"
else
  log "FAIL: the exports differ ($work)"
  exit 1
fi
