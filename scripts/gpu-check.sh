#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, its driver, and Python
# with PyTorch and transformers (CUDA 13 builds). Nothing is downloaded or
# compiled there: build the CUDA binaries first on any x86-64 Linux machine
# with scripts/gpu-build.sh (they land in gpu/), then, on the GPU machine,
# from the repository root:
#
#   scripts/gpu-check.sh
#
# It runs, each under a time limit (at most 9 minutes in all):
#   1. the numeric checks (examples/gpu_check.rs): log-probs and every
#      parameter's gradient on the GPU against the CPU engine, and 12 MPO
#      steps on the CPU, on the GPU in f32, and on the GPU in bf16 with f32
#      master weights;
#   2. the MPO step at SmolLM2-135M's shape (1 pair x 128 tokens, 16 x 256)
#      in mpx (f32, bf16) and in PyTorch eager (bench/mpo_step.py; f32,
#      bf16 autocast);
#   3. sampling at SmolLM2-135M's shape (batch 1, 8, 64) in mpx and with
#      transformers' generate (bench/generate_speed.py);
#   4. `mpx run experiments/prefs_file.mpx --device cuda:0`, end to end;
# and prints one summary: each check PASS/FAIL with its figures, tokens/s
# side by side with their ratio, and the peak GPU memory of each program
# (nvidia-smi, sampled every 100 ms). Logs go to gpu/logs (and, where $OUT
# is set, as one gpu-check-logs.tgz into it).
# Exit status: 0 when every check passed and every program finished.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=gpu/logs
rm -rf "$logs" && mkdir -p "$logs"
for bin in gpu/mpx gpu/gpu_check; do
  if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$bin.xz" "$bin" && chmod +x "$bin"
  fi
  [ -x "$bin" ] || { echo "error: $bin missing; run scripts/gpu-build.sh first" >&2; exit 2; }
done

# The CUDA 13 libraries the binaries link: a toolkit's, or PyTorch's
# nvidia-* wheels'; and the driver's libcuda.so.1.
libs=$(python3 - <<'EOF'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + sys.path
dirs = []
for root in roots:
    for d in glob.glob(os.path.join(root, "nvidia", "**", "lib"), recursive=True):
        if d not in dirs and glob.glob(os.path.join(d, "lib*.so*")):
            dirs.append(d)
print(":".join(dirs))
EOF
)
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
  [ -d "$d" ] && libs="$libs:$d"
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd gpu/gpu_check | grep 'not found')
if [ -n "$missing" ]; then
  echo "error: libraries not found for gpu/gpu_check:" >&2
  echo "$missing" >&2
  echo "searched: $LD_LIBRARY_PATH; CUDA libraries on this machine:" >&2
  find / -xdev \( -name 'libcublas.so*' -o -name 'libcuda.so*' \) 2>/dev/null | head >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$logs/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' |
  tee -a "$logs/gpu.txt"

status=0
# phase NAME SECONDS COMMAND...: runs COMMAND under a time limit with its
# output in $logs/NAME.log, and records the peak GPU memory it used.
phase() {
  local name=$1 limit=$2
  shift 2
  local base
  base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$logs/$name.mem" &
  local poller=$!
  local started=$SECONDS
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  kill "$poller" 2>/dev/null
  wait "$poller" 2>/dev/null
  local peak
  peak=$(sort -n "$logs/$name.mem" | tail -1)
  echo "phase  $name  rc $rc  $((SECONDS - started)) s  peak GPU memory $((${peak:-$base} - base)) MiB" |
    tee -a "$logs/phases.txt"
  [ "$rc" = 0 ] || { status=1; tail -5 "$logs/$name.log"; }
}

: >"$logs/phases.txt"
phase checks 80 gpu/gpu_check checks
phase mpx-step 110 gpu/gpu_check step
phase torch-step-f32 75 python3 bench/mpo_step.py smollm2 --device cuda --dtype f32
phase torch-step-bf16 75 python3 bench/mpo_step.py smollm2 --device cuda --dtype bf16
phase mpx-sample 90 gpu/gpu_check sample
phase torch-sample-f32 60 python3 bench/generate_speed.py smollm2 --device cuda --dtype f32
phase torch-sample-bf16 60 python3 bench/generate_speed.py smollm2 --device cuda --dtype bf16
# A fresh store, so every stage runs.
phase mpx-run 90 gpu/mpx run experiments/prefs_file.mpx --device cuda:0 --store "$(mktemp -d)"

python3 bench/gpu_summary.py "$logs"
[ -n "${OUT:-}" ] && tar czf "$OUT/gpu-check-logs.tgz" -C gpu logs
exit $status
