#!/usr/bin/env bash
# Does the CUDA build still compile? `cargo check --features cuda
# --all-targets` on a machine without a GPU or a system CUDA toolkit (the
# toolkit comes from PyPI: scripts/cuda-env.sh). A check does not link.
# The kernel build (nvcc) takes about 5 minutes the first time.
# scripts/test.sh runs this before `cargo test` (MPX_SKIP_CUDA_CHECK=1
# skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cuda-env.sh
nvcc --version | tail -1
cargo check --features cuda --all-targets
