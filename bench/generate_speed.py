"""transformers counterpart of benches/generate.rs: sampling speed with the
KV cache (`model.generate`, do_sample, temperature 1, no top-k/top-p) on
randomly initialised models of two shapes, printed as generated tokens per
second. EOS is disabled so every row generates the full budget, as on the
Rust side.

  python bench/generate_speed.py [smollm2|tiny] [--threads N]
  python bench/generate_speed.py smollm2 --device cuda --dtype bf16

Needs torch and transformers (pip install torch transformers; gguf and accelerate for smollm2-gguf).
"""

import argparse
import os
import resource
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    # SmolLM2-135M's shape, a 32-token prompt, 64 new tokens.
    "smollm2-135m": dict(cfg=dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                                  rope_theta=100000.0, max_position_embeddings=256),
                         batches=[1, 8], prompt=32, new=64),
    # SmolLM2-135M-Instruct itself, from the Q4_1 GGUF the experiments use
    # (scripts/fetch_smollm2.sh); transformers dequantizes it to float32.
    "smollm2-gguf": dict(gguf="models/SmolLM2-135M-Instruct.Q4_1.gguf", batches=[1, 8], prompt=32, new=64),
    # The built-in task's tiny() model at the pairs stage's batch (64 rows).
    "tiny": dict(cfg=dict(vocab_size=259, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
                          max_position_embeddings=64),
                 batches=[8, 64], prompt=16, new=48),
}


def run(name, spec, reps, device, dtype):
    torch.manual_seed(0)
    if "gguf" in spec:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", spec["gguf"])
        if not os.path.exists(path):
            print(f"{name:<14} skipped: {path} is absent (scripts/fetch_smollm2.sh)")
            return
        model = LlamaForCausalLM.from_pretrained(
            os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32
        ).eval()
        cfg = model.config
    else:
        cfg = LlamaConfig(rms_norm_eps=1e-5, **spec["cfg"])
        model = LlamaForCausalLM(cfg).float().eval()
    model = model.to(device, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    cuda = device.startswith("cuda")
    for b in spec["batches"] + ([64] if cuda and 64 not in spec["batches"] else []):
        ids = torch.randint(3, cfg.vocab_size, (b, spec["prompt"]), device=device)
        kw = dict(max_new_tokens=spec["new"], min_new_tokens=spec["new"], do_sample=True, temperature=1.0,
                  top_k=0, top_p=1.0, pad_token_id=0, eos_token_id=None, use_cache=True)
        with torch.no_grad():
            model.generate(ids, **kw)  # warm-up
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                out = model.generate(ids, **kw)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        tokens = b * (out.shape[1] - spec["prompt"])
        best = min(times)
        label = f"{name} {dtype}" if cuda else name
        print(f"{label:<14} batch {b:>3}: {tokens} tokens, best of {reps} {best:.3f} s = {tokens / best:.0f} tokens/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", nargs="?", default="")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda adds batch 64)")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  device {args.device}")
    for name, spec in SHAPES.items():
        if args.shape in name:
            run(name, spec, args.reps, args.device, args.dtype)
    if args.device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (allocated)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
