#!/usr/bin/env bash
# The GPU figures the README asks for, in one run of about 8 minutes on one GPU:
#   1. B0 training images/s at 224 px, float32 and mixed_float16 (bench_pipeline.py, cached pipeline);
#   2. V2M training images/s at 224 px, float32;
#   3. the prediction job's images/s on JPEGs (read, decode, frame, preprocess, model) at 4, 8
#      and 16 threads for the input pipeline (bench_predict.py, B0 at 224 px);
#   4. the wall time of the tiny grid (.test/config/tiny.yaml) through the real workflow.
# Needs the GPU build: `make install && .venv/bin/pip install -e '.[gpu]'`. Each figure goes to
# results/bench/gpu/<name>.json (and to $OUT when set), the whole printout to gpu.log beside them.
#   bash bench/gpu.sh            # PY=/path/to/python to use another environment
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SNAKEMAKE=${SNAKEMAKE:-$(realpath "$(dirname "$PY")")/snakemake}
DEST=results/bench/gpu
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
exec > >(tee "$DEST/gpu.log") 2>&1

keep() {  # keep a benchmark's json under its own name (each script overwrites its own file)
    cp "results/bench/$1.json" "$DEST/$2.json"
    if [ -n "${OUT:-}" ]; then cp "$DEST/$2.json" "$OUT/"; fi
}
step() { echo; echo "=== $* ($(date +%T))"; }

"$PY" - <<'PY'
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TensorFlow", tf.__version__, "GPUs:", [g.name for g in gpus])
if not gpus:
    raise SystemExit("no GPU visible to TensorFlow: install the GPU build (pip install -e '.[gpu]')")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true

step "B0 224 px training, float32"
"$PY" bench/bench_pipeline.py --model b0 --image-size 224 --images 2048 --batch-size 64 \
    --epochs 3 --no-cache --workers 8 --precision float32
keep pipeline b0_224_float32
step "B0 224 px training, mixed_float16"
"$PY" bench/bench_pipeline.py --model b0 --image-size 224 --images 2048 --batch-size 64 \
    --epochs 3 --no-cache --workers 8 --precision mixed_float16
keep pipeline b0_224_mixed_float16
step "V2M 224 px training, float32"
"$PY" bench/bench_pipeline.py --model v2m --image-size 224 --images 1024 --batch-size 32 \
    --epochs 2 --no-cache --workers 8 --precision float32
keep pipeline v2m_224_float32
for threads in 4 8 16; do
    step "prediction job, JPEG, B0 224 px, $threads threads"
    "$PY" bench/bench_predict.py --image-size 224 --images 4096 --fits-images 0 --batch-size 128 \
        --repeats 1 --threads "$threads"
    keep predict "predict_224_threads$threads"
done
step "tiny grid through the workflow"
repo=$(pwd) tiny=$DEST/tiny
rm -rf "$tiny" && mkdir -p "$tiny"
start=$(date +%s)
(cd "$tiny" && "$SNAKEMAKE" -s "$repo/Snakefile" --cores 16 --resources gpu=1 \
    --configfile "$repo/.test/config/tiny.yaml" --quiet rules)
echo "{\"tiny_grid_wall_s\": $(( $(date +%s) - start ))}" > "$DEST/tiny_grid.json"
if [ -n "${OUT:-}" ]; then cp "$DEST/tiny_grid.json" "$DEST/gpu.log" "$OUT/"; fi
step "done: figures in $DEST"
cat "$DEST/tiny_grid.json"
