"""The summary of scripts/gpu-check.sh, read from the logs it wrote:

  python3 bench/gpu_summary.py LOG_DIR

Markdown tables: the checks (PASS/FAIL and figures), the MPO step and
sampling in tokens/s for mpx and PyTorch with their ratio, and each
program's exit status, time and peak GPU memory.
"""

import os
import re
import sys


def read(logs, name):
    path = os.path.join(logs, name)
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def row(what, a, b):
    f = lambda x: f"{x:.0f}" if x else "-"
    return f"| {what} | {f(a)} | {f(b)} | {f'{a / b:.2f}x' if a and b else '-'} |"


def side_by_side(title, theirs_name, ours, theirs):
    """One table: (shape, dtype) -> tokens/s for mpx and the reference."""
    print(f"\n| {title} | mpx tokens/s | {theirs_name} tokens/s | ratio |\n|---|---|---|---|")
    number = lambda text: int(re.search(r"\d+", text)[0])
    for key in sorted(set(ours) | set(theirs), key=lambda k: (number(k[0]), k[1])):
        print(row(f"{key[0]} {key[1]}", ours.get(key), theirs.get(key)))


def main(logs):
    print("\n== mpx GPU check ==")
    print(read(logs, "gpu.txt").strip())

    print("\n| check | result | figures |\n|---|---|---|")
    for line in read(logs, "checks.log").splitlines():
        m = re.match(r"check\s+(.+?)\s{2,}(PASS|FAIL)\s+(.*)", line)
        if m:
            print(f"| {m[1]} | {m[2]} | {m[3]} |")

    side_by_side(
        "MPO step, SmolLM2-135M shape", "PyTorch eager",
        {(m[1], m[2]): float(m[3]) for m in re.finditer(
            r"mpo-step smollm2-135m (\S+) (\S+) .*? (\d+) tokens/s", read(logs, "mpx-step.log"))},
        {(f"{m[1]}x{m[2]}", d): float(m[3]) for d in ("f32", "bf16") for m in re.finditer(
            r"(\d+) pairs x (\d+) tokens .*? (\d+) tokens/s", read(logs, f"torch-step-{d}.log"))})
    side_by_side(
        "sampling, SmolLM2-135M shape, 64 new tokens", "transformers",
        {(f"batch {m[1]}", m[2]): float(m[3]) for m in re.finditer(
            r"sample smollm2-135m batch (\d+) (\S+) .*? (\d+) tokens/s", read(logs, "mpx-sample.log"))},
        {(f"batch {m[1]}", d): float(m[2]) for d in ("f32", "bf16") for m in re.finditer(
            r"batch\s+(\d+): .*?= (\d+) tokens/s", read(logs, f"torch-sample-{d}.log"))})

    print("\n| program | exit | seconds | peak GPU memory |\n|---|---|---|---|")
    for line in read(logs, "phases.txt").splitlines():
        m = re.match(r"phase\s+(\S+)\s+rc (\d+)\s+(\d+) s\s+peak GPU memory (-?\d+) MiB", line)
        if m:
            print(f"| {m[1]} | {m[2]} | {m[3]} | {m[4]} MiB |")

    run = [l for l in read(logs, "mpx-run.log").splitlines() if l.strip()]
    print("\nmpx run prefs_file.mpx --device cuda:0, last lines:")
    for line in run[-4:]:
        print("  " + line)


if __name__ == "__main__":
    main(sys.argv[1])
