#!/usr/bin/env bash
# The one prepared device call of bench/DEVICE_PLAN.md: GPU tests, the benchmark, then the fla test, each under its
# own timeout so the whole ends inside the call's limit. Everything it produces goes to $OUT (the run tool's folder).
#
#   on the device:   bash bench/device_run.sh                     (run tool: carry [".whl"], timeout_s 300)
#   here, first:     SMOKE=1 OUT=/tmp/devrun bash bench/device_run.sh   (CPU, tiny config: checks the script runs)
#
# Steps and their limits (seconds; they sum to 285 of the call's 300):
#   install the carried fla-core wheel (if any) ~5 | versions ~5 | GPU tests TESTS_S=45 | benchmark BENCH_S=200
#   | fla-vs-chunk test FLA_TEST_S=30.  The benchmark stops starting rows at BENCH_S - 40 s (--budget-s), keeping
#   40 s for its last row, the cleanup of its 4.8 GB checkpoint and the report.
set -u
: "${OUT:?set OUT to the folder that receives the logs and reports}"
TESTS_S=${TESTS_S:-45}
BENCH_S=${BENCH_S:-200}
FLA_TEST_S=${FLA_TEST_S:-30}
export PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/triton-cache}   # a rerun on the same machine reuses fla's autotuning
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
step() { echo "== $(date +%T) $*" | tee -a "$OUT/steps.log"; }

step "install fla-core from .whl (only fla-core: flash-linear-attention would pin and upgrade transformers)"
if ls .whl/fla_core-*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/fla_core-*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || echo "fla-core did not install" | tee -a "$OUT/steps.log"
else
    echo "no .whl/fla_core-*.whl: the fla rows will be skipped" | tee -a "$OUT/steps.log"
fi

step "versions"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  python3 -c "import sys, torch, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| cuda', torch.version.cuda, '| transformers', transformers.__version__)" 2>&1
  python3 -c "import triton; print('triton', triton.__version__)" 2>&1
  python3 -c "from lib_qwen35.ops.delta_rule import fla_problem; print('fla:', fla_problem() or 'usable')" 2>&1
} | tee "$OUT/versions.txt"

# A limit of 0 skips a step (GNU timeout would read 0 as "no limit").
step "GPU tests (chunk kernel: no Triton compiles), limit ${TESTS_S}s"
if [ "$TESTS_S" -gt 0 ]; then
    timeout "$TESTS_S" python3 -m pytest -q -p no:cacheprovider \
        tests/ops/test_cuda_graphs.py::test_cuda_graph_equals_eager_on_gpu \
        tests/ops/test_fp8_matmul.py::test_fp8_linear_on_gpu_matches_emulation > "$OUT/gpu_tests.log" 2>&1
    echo "pytest exit $?" | tee -a "$OUT/gpu_tests.log" "$OUT/steps.log"
fi

step "benchmark, limit ${BENCH_S}s (fla autotuning is its own logged step before the timed rows)"
if [ -n "${SMOKE:-}" ]; then
    bench_args=(--smoke --tmpdir /tmp)
else
    bench_args=(--tmpdir /tmp)
fi
timeout "$BENCH_S" python3 bench/bench_gpu.py "${bench_args[@]}" --budget-s $((BENCH_S - 40)) \
    --out "$OUT/RESULTS.md" --json "$OUT/results.json" > "$OUT/bench.log" 2>&1
echo "bench exit $?" | tee -a "$OUT/bench.log" "$OUT/steps.log"

step "fla kernel vs chunk kernel in the model (compiles fla for the small test model), limit ${FLA_TEST_S}s"
if [ "$FLA_TEST_S" -gt 0 ]; then
    timeout "$FLA_TEST_S" python3 -m pytest -q -p no:cacheprovider -rs \
        tests/ops/test_delta_rule.py::test_fla_kernel_matches_chunk_kernel_in_the_model > "$OUT/fla_test.log" 2>&1
    echo "pytest exit $?" | tee -a "$OUT/fla_test.log" "$OUT/steps.log"
fi
step "done"
