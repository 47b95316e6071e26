#!/usr/bin/env bash
# One back-to-back round of the README's CPU speed table: the training and
# sampling benchmarks of mpx and of PyTorch / transformers, each with this
# CPU's own kernels and then with AVX2 kernels on both sides (mpx:
# MPX_SIMD=avx2; PyTorch: ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2),
# the stand-in for a CPU without AVX-512; then the main experiment from a
# fresh store, both ways, with its tidy table compared byte for byte to the
# committed one (the run rewrites reports/ablate_weights/). Run it alone on
# the machine.
#
#   bench/cpu_round.sh PYTHON        # a python with torch, transformers, gguf, accelerate
#   bench/cpu_round.sh PYTHON quick  # the benchmarks only, not the experiment
#
# Needs scripts/fetch_smollm2.sh's model for the GGUF sampling shape.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:?usage: bench/cpu_round.sh PYTHON [quick]}
lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
echo "AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no); $(nproc) cores; $(date -u +%F)"
cargo build --release --quiet --benches --bin mpx
avx2=(env MPX_SIMD=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2)
for kernels in own avx2; do
  run=()
  [ "$kernels" = avx2 ] && run=("${avx2[@]}")
  echo "== training, $kernels kernels: mpx, then PyTorch"
  "${run[@]}" cargo bench --quiet --bench mpo_step 2>/dev/null | grep -v '^$'
  "${run[@]}" "$py" bench/mpo_step.py
  echo "== sampling, $kernels kernels: mpx, then transformers"
  "${run[@]}" cargo bench --quiet --bench generate 2>/dev/null | grep -v '^$'
  "${run[@]}" "$py" bench/generate_speed.py 2>&1 | grep -vE 'it/s\]|^Loading'
done
[ "${2:-}" = quick ] && exit 0
for kernels in own avx2; do
  run=()
  [ "$kernels" = avx2 ] && run=(env MPX_SIMD=avx2)
  tmp=$(mktemp -d)
  echo "== experiments/ablate_weights.mpx from a fresh store, $kernels kernels"
  start=$(date +%s)
  "${run[@]}" target/release/mpx run experiments/ablate_weights.mpx --store "$tmp/store" -q \
    > "$tmp/log" 2>&1 || { tail "$tmp/log"; exit 1; }
  secs=$(( $(date +%s) - start ))
  echo "wall $((secs / 60)) min $((secs % 60)) s"
  # (The repository's mpx.toml puts the reports in its reports/ folder.)
  if git diff --quiet -- reports/ablate_weights/ablation.tidy.csv; then
    echo "tidy table: byte-identical to the committed reports/ablate_weights/ablation.tidy.csv"
  else
    echo "tidy table: DIFFERS from the committed one"
    git diff --stat -- reports/ablate_weights/ablation.tidy.csv
  fi
  rm -rf "$tmp"
done
