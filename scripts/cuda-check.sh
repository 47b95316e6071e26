#!/usr/bin/env bash
# Does the CUDA build still compile? `cargo check --features cuda
# --all-targets` on a machine without a GPU or a system CUDA toolkit:
# NVIDIA's CUDA 13.0 toolkit wheels from PyPI (nvcc, headers, cuBLAS,
# cuRAND, NVRTC; about 650 MB) go into a virtual environment under
# target/cuda-toolkit, and candle's kernels are compiled for compute
# capability 9.0 (H100/H200). 13.0 matches the GPU machines' driver (580)
# and cudarc 0.19 accepts it. A check does not link, so no driver library
# is needed. The kernel build (nvcc) takes about 5 minutes the first time.
# scripts/test.sh runs this before `cargo test` (MPX_SKIP_CUDA_CHECK=1
# skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/cuda-toolkit
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || {
    echo "error: python3 -m venv failed; install Debian's python3-venv" >&2
    exit 1
  }
fi
if [ ! -x "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc ]; then
  echo "installing the CUDA 13.0 toolkit wheels into $venv (pip)"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'cuda-toolkit[nvcc,cudart,cccl,cublas,curand,nvrtc]==13.0.*'
fi
cuda=$(cd "$venv"/lib/python3*/site-packages/nvidia/cu13 && pwd)
export PATH="$cuda/bin:$PATH" CUDA_HOME="$cuda" CUDA_ROOT="$cuda" CUDA_PATH="$cuda"
export CUDA_COMPUTE_CAP=90
nvcc --version | tail -1
cargo check --features cuda --all-targets
