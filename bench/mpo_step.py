"""PyTorch counterpart of benches/mpo_step.rs: one MPO step (policy forward +
backward over chosen and rejected rows in one batch, cached reference
log-probs, AdamW) at the same two shapes, printed as tokens per second.

  python bench/mpo_step.py [small|smollm2] [--threads N]
  python bench/mpo_step.py smollm2 --device cuda --dtype bf16

Needs torch and transformers (pip install torch transformers). Uses the
same thread count as candle (all cores unless --threads). On a GPU
(`--device cuda`, what scripts/gpu-check.sh runs) the SmolLM2 shape also
runs at 16 pairs x 256 tokens, and `--dtype bf16` is autocast: bf16
compute, f32 master weights and AdamW, log-softmax in f32.
"""

import argparse
import os
import resource
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "small": dict(cfg=dict(vocab_size=4096, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False),
                  pairs=8, tokens=128, steps=5),
    "smollm2-135m": dict(cfg=dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                                  rope_theta=100000.0),
                         pairs=1, tokens=128, steps=5),
    # GPU only: a batch that fills more of a GPU.
    "smollm2-135m-16x256": dict(cfg=dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                                         tie_word_embeddings=True, rope_theta=100000.0),
                                pairs=16, tokens=256, steps=5, gpu_only=True),
    # MINIATURE.md's SFT stage: SFT only, 64 sequences x 56 tokens.
    "tiny-sft": dict(cfg=dict(vocab_size=259, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False),
                     pairs=64, tokens=56, steps=10, sft_only=True),
}


def run(name, spec, device, dtype):
    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=256, rms_norm_eps=1e-5, **spec["cfg"])
    model = LlamaForCausalLM(cfg).float().train().to(device)
    n_params = sum(p.numel() for p in model.parameters())
    b, t = spec["pairs"], spec["tokens"]
    half = t // 2
    # rows: chosen then rejected, prompt shared; scored: the completion half.
    prompt = torch.randint(0, cfg.vocab_size, (b, half))
    chosen = torch.randint(0, cfg.vocab_size, (b, t - half))
    rejected = torch.randint(0, cfg.vocab_size, (b, t - half))
    sft_only = spec.get("sft_only", False)
    rows = [torch.cat([prompt, chosen], 1)] + ([] if sft_only else [torch.cat([prompt, rejected], 1)])
    seqs = torch.cat(rows, 0)
    ids, targets = seqs[:, :-1], seqs[:, 1:]
    mask = torch.zeros_like(targets, dtype=torch.float32)
    mask[:, half - 1:] = 1.0
    ids, targets, mask = ids.to(device), targets.to(device), mask.to(device)
    ref_c = torch.full((b,), -300.0, device=device)
    ref_r = torch.full((b,), -310.0, device=device)
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and dtype == "bf16")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    running = [0.0, 0]

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            logits = model(input_ids=ids).logits
        lp = torch.gather(F.log_softmax(logits.float(), -1), 2, targets.unsqueeze(2)).squeeze(2)
        s = (lp * mask).sum(1)
        sft = -(lp[:b] * mask[:b]).sum() / mask[:b].sum()
        if sft_only:
            sft.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return
        sc, sr = s[:b], s[b:]
        rc, rr = 0.1 * (sc - ref_c), 0.1 * (sr - ref_r)
        m = torch.cat([rc, rr]).mean().item()
        running[1] += 1
        running[0] += (m - running[0]) / running[1]
        d = running[0]
        dpo = -F.logsigmoid(rc - rr).mean()
        bco = (-F.logsigmoid(rc - d) - F.logsigmoid(-(rr - d))).mean()
        loss = 0.8 * dpo + 0.2 * bco + sft
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    step()
    step()
    times = []
    for _ in range(spec["steps"]):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    tokens = len(rows) * b * t
    label = f"{name} {dtype}" if cuda else name
    print(f"{label:<14} params {n_params:>11}  {b} pairs x {t} tokens  step median {median:.4f} s "
          f"(min {times[0]:.4f})  {tokens / median:.0f} tokens/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", nargs="?", default="")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"], help="bf16: autocast on a GPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  device {args.device}")
    for name, spec in SHAPES.items():
        if args.shape in name and (args.device != "cpu" or not spec.get("gpu_only")):
            run(name, spec, args.device, args.dtype)
    if args.device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (allocated)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
