#!/usr/bin/env bash
# The GPU checks of issue 24 in one command, on a machine with a CUDA device:
#   1. tests/test_cuda.py and tests/test_noise.py (every shipped model on CUDA against the CPU, the
#      DataLoader, mixed precision, medhub.noise CPU == CUDA);
#   2. benchmarks/gpu.py (medhub against a bare loop for 00101/00102 at 100,000 samples, and against
#      the packages' own sample() for 00104/00106/00107);
#   3. the whole default test suite (it must pass where device="auto" picks CUDA);
#   4. benchmarks/writers.py (files written on every core, against one core and the disk).
#
# Run from the repository root:   OUT=/some/folder bash tools/gpu_check.sh [STEP ...]
# Results, logs and JSON, go to $OUT (default runs/gpu); each step has its own time limit, so a slow
# step does not take the others with it. To put the figures on docs/performance.md, copy gpu.json and
# writers.json over those of the last full run in runs/bench/results/ and run
#   python benchmarks/run_all.py --json-dir runs/bench/results --render
# which writes the page from the JSON results without running anything.
#
# A machine without internet needs wheels of what it lacks in .whl/ (or $WHEELS; py3.12 there: orjson, fastjsonschema,
# platformdirs, nibabel, prdc, and hatchling, trove-classifiers, tomlkit, editables to install medhub
# itself); they are installed into /tmp/site first. medhub is installed in editable mode so that the
# shipped packages' `medhub>=...` requirement is met by this working tree.
set -u -o pipefail
OUT=${OUT:-runs/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
WHEELS=${WHEELS:-.whl}
if [ -d "$WHEELS" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  "$PY" -c "import os, torch, medhub; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', 'cores', len(os.sched_getaffinity(0)), 'medhub', medhub.__version__)"
} 2>&1 | tee "$OUT/device.txt"

status=0
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log, remember a failure
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
}

# The limits add up to under 10 minutes, one call on the project's device machine; name steps to run
# only those. On that machine (16 cores) the writer step writes 64,000 files a cell, so two calls are
# safer: `bash tools/gpu_check.sh cuda_tests gpu suite`, then `bash tools/gpu_check.sh writers`.
wanted=" ${*:-cuda_tests gpu suite writers} "
want() { [[ "$wanted" == *" $1 "* ]]; }
want cuda_tests && step cuda_tests 90 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_noise.py
want gpu && step gpu 150 "$PY" benchmarks/gpu.py --no-writers --json "$OUT/gpu.json"
want suite && step suite 180 "$PY" -m pytest -q -p no:cacheprovider -rs --durations=5
want writers && step writers 150 "$PY" benchmarks/writers.py --json "$OUT/writers.json"
exit $status
