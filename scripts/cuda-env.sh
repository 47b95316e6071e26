# Sourced by scripts/cuda-check.sh and scripts/gpu-build.sh: a CUDA 13.0
# toolkit for building mpx's GPU code on a machine without one (or without
# a GPU). NVIDIA's toolkit wheels from PyPI (nvcc, headers, cuBLAS, cuRAND,
# NVRTC, cudart; about 650 MB) go into a virtual environment under
# target/cuda-toolkit. 13.0 matches the GPU machines' driver (580) and
# cudarc 0.19 accepts it (it refuses nvcc newer than 13.4).
#
# The wheels ship only versioned library names and no driver library, so
# target/cuda-link/lib holds plain-named links (libcublas.so → .so.13, …)
# and a stub libcuda.so (soname libcuda.so.1) that defines every driver
# function cudarc references, each returning an error: enough to link; at
# run time the real driver's libcuda.so.1 is loaded instead.
#
# Exports PATH (nvcc), CUDA_HOME, CUDA_PATH, CUDA_ROOT and CUDA_COMPUTE_CAP
# (90: H100/H200; candle's kernels are compiled for it, and PTX for it
# runs on later GPUs too). Both scripts export the same values, so a check
# and a build never invalidate each other's build-script results.
cuda_venv=target/cuda-toolkit
if [ ! -x "$cuda_venv/bin/python" ]; then
  python3 -m venv "$cuda_venv" || {
    echo "error: python3 -m venv failed; install Debian's python3-venv" >&2
    exit 1
  }
fi
if ! ls "$cuda_venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc >/dev/null 2>&1; then
  echo "installing the CUDA 13.0 toolkit wheels into $cuda_venv (pip)"
  "$cuda_venv/bin/pip" install -q --disable-pip-version-check \
    'cuda-toolkit[nvcc,cudart,cccl,cublas,curand,nvrtc]==13.0.*'
fi
cuda_home=$(cd "$cuda_venv"/lib/python3*/site-packages/nvidia/cu13 && pwd)
cuda_link=$(mkdir -p target/cuda-link/lib && cd target/cuda-link && pwd)
if [ ! -e "$cuda_link/lib/libcuda.so" ]; then
  for lib in "$cuda_home"/lib/lib*.so.*; do
    name=$(basename "$lib")
    ln -sf "$lib" "$cuda_link/lib/${name%%.so.*}.so"
  done
  # On a fresh machine cargo has not unpacked cudarc yet (ls fails: with
  # pipefail that must not end the script).
  cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$cudarc" ]; then
    cargo fetch -q
    cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort -V | tail -1)
  fi
  grep -oE '^\s+fn (cu[A-Za-z0-9_]+)\(' "$cudarc/src/driver/sys/mod.rs" |
    sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/int \1(void) { return 999; }/' |
    sort -u >"$cuda_link/stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda_link/lib/libcuda.so" "$cuda_link/stub.c"
fi
export PATH="$cuda_home/bin:$PATH" CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home"
export CUDA_ROOT="$cuda_link" CUDA_COMPUTE_CAP=90
