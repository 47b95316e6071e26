"""PyTorch counterpart of benches/mpo_step.rs: one MPO step (policy forward +
backward over chosen and rejected rows in one batch, cached reference
log-probs, AdamW) at the same two shapes, printed as tokens per second.

  python bench/mpo_step.py [small|smollm2] [--threads N]

Needs torch and transformers (pip install torch transformers). Uses the
same thread count as candle (all cores unless --threads).
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
    # MINIATURE.md's SFT stage: SFT only, 64 sequences x 56 tokens.
    "tiny-sft": dict(cfg=dict(vocab_size=259, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False),
                     pairs=64, tokens=56, steps=10, sft_only=True),
}


def run(name, spec):
    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=256, rms_norm_eps=1e-5, **spec["cfg"])
    model = LlamaForCausalLM(cfg).float().train()
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
    ref_c = torch.full((b,), -300.0)
    ref_r = torch.full((b,), -310.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    running = [0.0, 0]

    def step():
        opt.zero_grad(set_to_none=True)
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

    step()
    times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    tokens = len(rows) * b * t
    print(f"{name:<14} params {n_params:>11}  {b} pairs x {t} tokens  step median {median:.3f} s "
          f"(min {times[0]:.3f})  {tokens / median:.0f} tokens/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", nargs="?", default="")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}")
    for name, spec in SHAPES.items():
        if args.shape in name:
            run(name, spec)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
