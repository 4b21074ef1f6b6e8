#!/usr/bin/env bash
# The GPU check on the GPU machine (issue 18, item 5): run it THERE, from any folder, with the
# bundle that benchmarks/gpu_check/pack.py made here carried along.
#
#   bash benchmarks/gpu_check/run.sh                       # the check, on cuda
#   bash benchmarks/gpu_check/run.sh --only score,agreement    # some steps (arguments go to check.py)
#
# The machine has no network: the carried wheels (transformers 5.24, trl, datasets, pydantic, ...)
# go into a target folder put first on PYTHONPATH, so they win over the machine's own versions
# without touching its environment; tomdistill runs from the carried tree's src/. The log goes
# to $OUT/gpu_check.log and check.py writes $OUT/gpu_check.json when $OUT is set (the device
# tool brings back what is under $OUT). Overrides: PYTHON, BUNDLE, SITE, GPU_CHECK_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
BUNDLE=${BUNDLE:-benchmarks/gpu_check/bundle}
SITE=${SITE:-/tmp/gpu_check_site}
# A hung step must still leave the log behind: stop well inside the device call's own limit.
LIMIT=${GPU_CHECK_TIMEOUT:-420}

if ! ls "$BUNDLE"/wheels/*.whl >/dev/null 2>&1; then
  echo "no wheels in $BUNDLE/wheels: run benchmarks/gpu_check/pack.py here first and carry $BUNDLE" >&2
  exit 2
fi

run() {
  echo "== the machine's own versions (before the carried wheels)"
  "$PYTHON" -m pip list 2>/dev/null | grep -i -E '^(torch|transformers|accelerate|peft|trl|datasets|pydantic|tokenizers|huggingface.hub|safetensors|numpy|pyarrow|pandas|fsspec|regex|tqdm|packaging|pyyaml|psutil|typer|rich|jinja2|httpx|scipy|matplotlib|markdown|typing.extensions) ' || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
  echo "== installing $(ls "$BUNDLE"/wheels/*.whl | wc -l) carried wheels into $SITE"
  local started=$SECONDS
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$BUNDLE"/wheels/*.whl
  echo "installed in $((SECONDS - started)) s"
  export PYTHONPATH="$SITE:$PWD/src"
  export PYTHONUNBUFFERED=1
  # Nothing can be fetched there: no library should try (and wait on) the hub.
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
  timeout "$LIMIT" "$PYTHON" benchmarks/gpu_check/check.py --bundle "$BUNDLE" "$@"
}

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  run "$@" 2>&1 | tee "$OUT/gpu_check.log"
else
  run "$@"
fi
