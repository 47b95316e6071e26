"""Reference loss values from TRL itself, for tests/trl_losses.rs.

Two TRL releases are needed (see ../shared/MPO.md):
  * TRL 1.x (`DPOTrainer._compute_loss`): every loss type, label smoothing
    for robust/exo/aot, IPO's length normalisation, loss mixtures;
  * TRL 0.28 (`DPOTrainer.dpo_loss`): cDPO (label smoothing on `sigmoid`)
    and BCO's running reward shift delta across loss calls.

Usage (each in its own throwaway venv; TRL 0.28 needs transformers 4.57):
  python scripts/reference/trl_losses.py trl1   > tests/fixtures/reference/trl1_losses.json
  python scripts/reference/trl_losses.py trl028 > tests/fixtures/reference/trl028_losses.json

TRL is called on stand-in objects carrying exactly the attributes the loss
code reads; with `torch.set_default_dtype(torch.float64)` every tensor TRL
creates (EXO's epsilon included) is float64, so results compare to 1e-9.
ORPO's `odds_ratio_loss` casts to float32 with `.float()`; that cast is made
a no-op for the call so it too runs in float64.
"""

import contextlib
import json
import math
import sys
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
BETA = 0.1


def rows_for(rng, n, margin=None, equal=False, batch=0):
    """n preference rows with per-token chosen log-probs.

    margin: beta*h for every pair (sign included); equal: policy == reference.
    """
    rows = []
    for _ in range(n):
        lc, lr = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        tc = [float(x) for x in -rng.uniform(0.01, 4.0, lc)]
        tr = [float(x) for x in -rng.uniform(0.01, 4.0, lr)]
        sc, sr = math.fsum(tc), math.fsum(tr)
        if equal:
            rc, rr = sc, sr
        elif margin is not None:
            # rho_c = +h/2, rho_r = -h/2 with beta*h = margin
            h = margin / BETA
            rc, rr = sc - h / 2, sr + h / 2
        else:
            rc = sc + float(rng.normal(0, 3))
            rr = sr + float(rng.normal(0, 3))
        rows.append(
            {
                "policy_chosen_logps": sc,
                "policy_rejected_logps": sr,
                "ref_chosen_logps": rc,
                "ref_rejected_logps": rr,
                "chosen_len": lc,
                "rejected_len": lr,
                "chosen_token_logps": tc,
                "batch": batch,
            }
        )
    return rows


def input_sets():
    rng = np.random.default_rng(20261126)
    return {
        "equal": rows_for(rng, 4, equal=True),
        "margin_plus_50": rows_for(rng, 3, margin=50.0),
        "margin_minus_50": rows_for(rng, 3, margin=-50.0),
        "random": rows_for(rng, 8),
    }


def tensors(rows):
    t = lambda k: torch.tensor([r[k] for r in rows], dtype=torch.float64)
    return (
        t("policy_chosen_logps"),
        t("policy_rejected_logps"),
        t("ref_chosen_logps"),
        t("ref_rejected_logps"),
    )


# ---------------------------------------------------------------- TRL 1.x --


def trl1_loss(rows, loss_types, weights, label_smoothing=0.0, tau=0.05):
    from trl import DPOTrainer

    b = len(rows)
    prompt = 2
    width = prompt + max(max(r["chosen_len"], r["rejected_len"]) for r in rows)
    completion_mask = torch.zeros(2 * b, width, dtype=torch.long)
    log_probs = torch.zeros(2 * b, width - 1)
    for i, r in enumerate(rows):
        # Rejected per-token values: any split of the sum works for every
        # loss but sft (chosen only); spread it evenly.
        tr = [r["policy_rejected_logps"] / r["rejected_len"]] * r["rejected_len"]
        for row, tokens in ((i, r["chosen_token_logps"]), (b + i, tr)):
            completion_mask[row, prompt : prompt + len(tokens)] = 1
            log_probs[row, prompt - 1 : prompt - 1 + len(tokens)] = torch.tensor(tokens)
    _, _, ref_c, ref_r = tensors(rows)
    outputs = SimpleNamespace(
        log_probs=log_probs,
        entropy=torch.zeros_like(log_probs),
        mean_logits=torch.zeros_like(log_probs),
        is_top1=torch.zeros_like(log_probs, dtype=torch.bool),
    )
    accel = SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x)
    stand_in = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=accel,
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=loss_types,
        loss_weights=weights,
        beta=BETA,
        label_smoothing=label_smoothing,
        use_weighting=False,
        args=SimpleNamespace(discopop_tau=tau),
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {
        "input_ids": torch.zeros(2 * b, width, dtype=torch.long),
        "attention_mask": torch.ones(2 * b, width, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref_c,
        "ref_rejected_logps": ref_r,
    }
    loss = DPOTrainer._compute_loss(stand_in, lambda **kw: outputs, inputs, False)
    m = stand_in._metrics["train"]
    return {
        "loss": loss.item(),
        "chosen_rewards_mean": m["rewards/chosen"][0],
        "rejected_rewards_mean": m["rewards/rejected"][0],
    }


@contextlib.contextmanager
def float_is_noop():
    original = torch.Tensor.float
    torch.Tensor.float = lambda self: self
    try:
        yield
    finally:
        torch.Tensor.float = original


def trl1_orpo(rows, lam):
    from trl.experimental.orpo import ORPOTrainer

    chosen_avg = torch.tensor([r["policy_chosen_logps"] / r["chosen_len"] for r in rows])
    rejected_avg = torch.tensor([r["policy_rejected_logps"] / r["rejected_len"] for r in rows])
    stand_in = SimpleNamespace(beta=lam, accelerator=SimpleNamespace(device="cpu"))
    with float_is_noop():
        losses, *_ = ORPOTrainer.odds_ratio_loss(stand_in, chosen_avg, rejected_avg)
    # ORPOTrainer: loss = policy_nll_loss - losses.mean(), the NLL being the
    # cross-entropy mean over every chosen completion token of the batch.
    tokens = torch.tensor([x for r in rows for x in r["chosen_token_logps"]])
    nll = -tokens.mean()
    return {"loss": (nll - losses.mean()).item(), "per_pair_odds_term": (-losses).tolist()}


TRL1_CASES = [
    # (mpx expression, TRL loss types, weights, label_smoothing)
    ("dpo(beta=0.1)", ["sigmoid"], [1.0], 0.0),
    ("hinge(beta=0.1)", ["hinge"], [1.0], 0.0),
    ("ipo(beta=0.1)", ["ipo"], [1.0], 0.0),
    ("robust(beta=0.1, label_smoothing=0.2)", ["robust"], [1.0], 0.2),
    ("exo_pair(beta=0.1, label_smoothing=0.001)", ["exo_pair"], [1.0], 1e-3),
    ("exo_pair(beta=0.1, label_smoothing=0.3)", ["exo_pair"], [1.0], 0.3),
    ("nca_pair(beta=0.1)", ["nca_pair"], [1.0], 0.0),
    ('bco_pair(beta=0.1, delta="none")', ["bco_pair"], [1.0], 0.0),
    ("sppo_hard(beta=0.1)", ["sppo_hard"], [1.0], 0.0),
    ("aot(beta=0.1)", ["aot"], [1.0], 0.0),
    ("aot(beta=0.1, label_smoothing=0.1)", ["aot"], [1.0], 0.1),
    ("aot_unpaired(beta=0.1)", ["aot_unpaired"], [1.0], 0.0),
    ("apo_zero(beta=0.1)", ["apo_zero"], [1.0], 0.0),
    ("apo_down(beta=0.1)", ["apo_down"], [1.0], 0.0),
    ("discopop(beta=0.1, tau=0.05)", ["discopop"], [1.0], 0.0),
    ("sigmoid_norm(beta=0.1)", ["sigmoid_norm"], [1.0], 0.0),
    ("sft()", ["sft"], [1.0], 0.0),
    (
        '0.8*dpo(beta=0.1) + 0.2*bco_pair(beta=0.1, delta="none") + 1.0*sft()',
        ["sigmoid", "bco_pair", "sft"],
        [0.8, 0.2, 1.0],
        0.0,
    ),
]


def trl1():
    import trl

    cases = []
    for set_name, rows in input_sets().items():
        for expr, types, weights, eps in TRL1_CASES:
            out = trl1_loss(rows, types, weights, label_smoothing=eps)
            cases.append({"inputs": set_name, "expr": expr, "calls": [out]})
        out = trl1_orpo(rows, 0.1)
        cases.append({"inputs": set_name, "expr": "orpo(lambda=0.1)", "calls": [out]})
    # DiscoPOP at a huge negative margin: TRL's exp(-z) overflows and the
    # blend is inf * 0 = NaN; mpx stays finite (tests check both facts).
    huge = rows_for(np.random.default_rng(1), 2, margin=-1000.0)
    nan = trl1_loss(huge, ["discopop"], [1.0])["loss"]
    return {
        "made_by": f"scripts/reference/trl_losses.py trl1 (trl {trl.__version__}, torch {torch.__version__})",
        "beta": BETA,
        "inputs": {**input_sets(), "huge_negative": huge},
        "cases": cases,
        "discopop_huge_negative_is_nan": math.isnan(nan),
    }


# --------------------------------------------------------------- TRL 0.28 --


def trl028():
    import trl
    from trl import DPOTrainer
    from trl.trainer.dpo_config import FDivergenceType
    from trl.trainer.utils import RunningMoments

    def stand_in(eps):
        accel = SimpleNamespace(device="cpu", use_distributed=False)
        return SimpleNamespace(
            beta=BETA,
            label_smoothing=eps,
            reference_free=False,
            f_divergence_type=FDivergenceType.REVERSE_KL,
            f_divergence_params={},
            accelerator=accel,
            running=RunningMoments(accel),
            args=SimpleNamespace(discopop_tau=0.05),
        )

    sets = input_sets()
    cases = []
    for set_name, rows in sets.items():
        for eps in (0.1, 0.3):
            s = stand_in(eps)
            losses, cr, rr = DPOTrainer.dpo_loss(s, *tensors(rows), loss_type="sigmoid")
            cases.append(
                {
                    "inputs": set_name,
                    "expr": f"dpo(beta=0.1, label_smoothing={eps})",
                    "calls": [{"loss": losses.mean().item(), "per_pair": losses.tolist()}],
                }
            )
    # BCO's running delta across calls of unequal size: batches 0, 1, 2.
    rng = np.random.default_rng(7)
    calls = [rows_for(rng, n, batch=i) for i, n in enumerate((4, 4, 3))]
    s = stand_in(0.0)
    outs = []
    for rows in calls:
        losses, cr, rr = DPOTrainer.dpo_loss(s, *tensors(rows), loss_type="bco_pair")
        outs.append(
            {
                "loss": losses.mean().item(),
                "per_pair": losses.tolist(),
                "delta": s.running.mean,
                "chosen_rewards": cr.tolist(),
                "rejected_rewards": rr.tolist(),
            }
        )
    sets["bco_calls"] = [r for rows in calls for r in rows]
    cases.append({"inputs": "bco_calls", "expr": "bco_pair(beta=0.1)", "calls": outs})
    return {
        "made_by": f"scripts/reference/trl_losses.py trl028 (trl {trl.__version__}, torch {torch.__version__})",
        "beta": BETA,
        "inputs": sets,
        "cases": cases,
    }


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "trl1"
    out = trl1() if mode == "trl1" else trl028()
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
