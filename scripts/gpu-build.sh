#!/usr/bin/env bash
# Builds the CUDA binaries for a GPU machine, on any x86-64 Linux machine
# (no GPU needed): `mpx` and the GPU check (examples/gpu_check.rs), release
# profile, `--features cuda`, stripped, into gpu/ (ignored by git), each
# also xz-compressed (gpu/*.xz: about 22 MB for both). The
# toolkit comes from PyPI (scripts/cuda-env.sh). A cold build takes about
# 30 minutes on 2 cores.
#
# The binaries link libcuda.so.1 (the driver), cuBLAS, cuRAND, NVRTC and
# cudart 13 dynamically; on the GPU machine scripts/gpu-check.sh finds
# them (a CUDA 13 toolkit, or PyTorch's nvidia-* wheels) and sets
# LD_LIBRARY_PATH. A CPU-only mpx is the plain `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cuda-env.sh
nvcc --version | tail -1
cargo build --release --features cuda --bin mpx --example gpu_check
mkdir -p gpu
for bin in target/release/mpx target/release/examples/gpu_check; do
  strip -o "gpu/$(basename "$bin")" "$bin"
  # xz shrinks them about 6 times (candle's kernels are PTX text), so both
  # fit what a borrowed GPU machine is sent; gpu-check.sh unpacks them.
  xz -9 -T2 -k -f "gpu/$(basename "$bin")"
done
ls -l gpu
