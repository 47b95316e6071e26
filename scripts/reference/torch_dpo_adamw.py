"""PyTorch reference for tests/torch_parity.rs: a tiny Llama (transformers'
LlamaForCausalLM, eager attention), one DPO pair, three AdamW steps with
gradient clipping, in float32 (mpx's fused AdamW) or float64 (exact).

transformers' Llama computes RMSNorm, the RoPE tables and the attention
softmax in float32 even in a float64 model; for the float64 reference those
three casts are lifted to float64 (`modeling_llama` sees a `torch` whose
`float32`/`float` are float64), so the comparison is exact arithmetic.

Weights follow a closed formula both sides implement (see `weight` below), so
no weights are stored. Token ids are mpx's byte tokenizer: bytes 0-255,
BOS 256, EOS 257, PAD 258.

  python scripts/reference/torch_dpo_adamw.py f32 > tests/fixtures/reference/torch_dpo_adamw_f32.json
  python scripts/reference/torch_dpo_adamw.py f64 > tests/fixtures/reference/torch_dpo_adamw_f64.json
"""

import json
import math
import sys

import torch
import torch.nn.functional as F
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

BOS, EOS, PAD = 256, 257, 258
BETA, LR, WD, CLIP = 0.1, 1e-2, 0.01, 1.0
DTYPE = torch.float64 if sys.argv[1:] == ["f64"] else torch.float32


def weight(k, name, shape):
    """Parameter k (in sorted-name order): norms 1 + 0.05 sin(0.9 i + k),
    everything else 0.02 sin(0.7 i + 1.1 k + 0.3), i the flat index."""
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    if name.endswith("norm.weight"):
        v = 1.0 + 0.05 * torch.sin(0.9 * i + k)
    else:
        v = 0.02 * torch.sin(0.7 * i + 1.1 * k + 0.3)
    return v.reshape(shape).to(DTYPE)


def lift_float32_casts():
    import types

    from transformers.models.llama import modeling_llama

    class TorchF64(types.ModuleType):
        def __getattr__(self, name):
            return torch.float64 if name in ("float32", "float") else getattr(torch, name)

    modeling_llama.torch = TorchF64("torch")


def main():
    torch.manual_seed(0)
    if DTYPE == torch.float64:
        lift_float32_casts()
    cfg = LlamaConfig(
        vocab_size=259,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        attention_bias=False,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(cfg).to(DTYPE)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, name in enumerate(sorted(params)):
            params[name].copy_(weight(k, name, tuple(params[name].shape)))

    enc = lambda s: list(s.encode())
    prompt = [BOS] + enc("1+2=")
    chosen, rejected = enc("3") + [EOS], enc("4x") + [EOS]
    rows = [prompt + chosen, prompt + rejected]
    width = max(len(r) for r in rows) - 1
    ids = torch.tensor([[*(r[:-1]), *([PAD] * (width - len(r) + 1))] for r in rows])
    targets = torch.tensor([[*(r[1:]), *([PAD] * (width - len(r) + 1))] for r in rows])
    mask = torch.zeros(2, width, dtype=DTYPE)
    for j, comp in enumerate((chosen, rejected)):
        mask[j, len(prompt) - 1 : len(prompt) - 1 + len(comp)] = 1.0

    def logps():
        logits = model(input_ids=ids).logits
        lp = torch.gather(F.log_softmax(logits, -1), 2, targets.unsqueeze(2)).squeeze(2)
        s = (lp * mask).sum(1)
        return s[0], s[1]

    with torch.no_grad():
        ref_c, ref_r = logps()

    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD, foreach=False)
    steps = []
    for _ in range(3):
        opt.zero_grad()
        c, r = logps()
        loss = -F.logsigmoid(BETA * ((c - ref_c) - (r - ref_r)))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        steps.append({"loss": loss.item(), "grad_norm": norm.item()})
    with torch.no_grad():
        c, r = logps()
        final = -F.logsigmoid(BETA * ((c - ref_c) - (r - ref_r))).item()
    out = {
        "made_by": f"scripts/reference/torch_dpo_adamw.py (torch {torch.__version__}, transformers {transformers.__version__})",
        "dtype": str(DTYPE),
        "beta": BETA,
        "lr": LR,
        "weight_decay": WD,
        "clip": CLIP,
        "ref_logps": [ref_c.item(), ref_r.item()],
        "steps": steps,
        "final_loss": final,
        "params_after": {
            n: {"sum": p.double().sum().item(), "sq": p.double().pow(2).sum().item(), "first": p.flatten()[:4].tolist()}
            for n, p in sorted(params.items())
        },
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
