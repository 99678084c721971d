#!/usr/bin/env bash
# Add mlops-serving as rows of the shared serving benchmark, with the anchors measured in the same run.
#
# The harness (../shared/bench/serving beside the checkout, read-only) is copied to a writable place once; its own
# bench.sh does everything else: per server and round it starts the server pinned to one core,
# checks the 1- and 64-row answers against bodies/expected.json, warms up, runs wrk pinned to the
# other core (1-row body at c=1/16/64, 64-row body at c=16), stops the server, and renders the table
# (medians of the rounds) into RESULTS/summary.md. Rounds are interleaved across all rows.
#
# Our rows serve a model.tar.gz that make_artifact.py builds around the harness's own
# model/mlp_torchscript.pt with a 32-feature schema, so the body and the compute are the anchors'.
#   mlops-serving            defaults, prediction capture ON (every request, JSON lines on disk),
#                            as it runs in production
#   mlops-serving-nocapture  control row: the same without capture, to price it (like the
#                            harness's fastapi-sagemaker-nolog row prices the access log)
# The rows are appended to the copy's servers.conf (the harness's documented way to add a row).
#
# Usage: benchmarks/serving/run.sh [--quick] [--no-anchors] [extra bench.sh options...]
#   --quick       1 round of 5 s (a smoke run, not a measurement)
#   --no-anchors  our rows only (for iterating; compare only within one run)
# Env: HARNESS (copy of the harness, default /tmp/bench/serving), VENV (default REPO/.venv),
#      ANCHORS (comma list, default: the five rows of issue #5's table), RESULTS (output dir).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SRC="${SRC:-$REPO/../shared/bench/serving}"
HARNESS="${HARNESS:-/tmp/bench/serving}"
VENV="${VENV:-$REPO/.venv}"
ANCHORS="${ANCHORS:-fastapi-sagemaker,kserve-v1,bentoml-batch,litserve-batch,torchserve-batch}"
RESULTS="${RESULTS:-$HARNESS/results/mlops-$(date +%Y%m%d-%H%M%S)}"
OURS="mlops-serving,mlops-serving-nocapture"

args=() reps=(--reps 3) only="$ANCHORS,$OURS"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) reps=(--reps 1 --duration 5); shift;;
    --no-anchors) only="$OURS"; shift;;
    *) args+=("$1"); shift;;
  esac
done

if [ ! -x "$HARNESS/bench.sh" ]; then
  mkdir -p "$(dirname "$HARNESS")"
  cp -r "$SRC" "$HARNESS"
  chmod -R u+w "$HARNESS"
fi
[ -x "$VENV/bin/mlops-serve" ] || { echo "mlops-serve not in $VENV: pip install -e $REPO/serving" >&2; exit 1; }

# The harness builds its model and bodies on first use (bench.sh's setup does the same).
if [ ! -f "$HARNESS/model/mlp_torchscript.pt" ] || [ ! -f "$HARNESS/bodies/expected.json" ]; then
  "$HARNESS/setup_venvs.sh" fastapi
  "$HARNESS/venvs/fastapi/bin/python" "$HARNESS/lib/make_model.py"
  "$HARNESS/venvs/fastapi/bin/python" "$HARNESS/lib/make_bodies.py"
fi
"$VENV/bin/python" "$HERE/make_artifact.py" "$HARNESS" "$HARNESS/mlops-artifact" >/dev/null
rm -rf "$HARNESS/mlops-capture"

# servers.conf line: name|venv|body_format|url|extra env|start command ($HERE expands in bench.sh).
conf="$HARNESS/servers.conf"
grep -v '^mlops-serving' "$conf" > "$conf.tmp" || true
start='exec mlops-serve serve --host 127.0.0.1 --model-path $HERE/mlops-artifact/model.tar.gz'
cat >> "$conf.tmp" <<EOF
mlops-serving|$VENV|instances|http://127.0.0.1:9000/invocations|MLOPS_CAPTURE_DIR=\$HERE/mlops-capture MLOPS_ENDPOINT_NAME=bench|$start --port 9000
mlops-serving-nocapture|$VENV|instances|http://127.0.0.1:9001/invocations||$start --port 9001
EOF
mv "$conf.tmp" "$conf"

exec "$HARNESS/bench.sh" --only "$only" "${reps[@]}" --out "$RESULTS" "${args[@]}"
