"""Choosing Vaccine's rho on alignment data, never on the evaluation prompts (``make extras``, notebook 09).

Each candidate rho's Vaccine alignment (rho 0 is SFT exactly) is measured on a validation set drawn
from the alignment data's own sources and held out from every split of the run:

- ``loss``: the mean per-sample loss, without any perturbation, on validation alignment samples (a
  harmful prompt with its refusal, a benign request with its helpful answer), the quantity
  alignment minimises; Vaccine's training log records the perturbed loss, which is not comparable;
- ``hs``: the share of validation harmful prompts the profile's judge flags;
- ``benign_refusal``: the share of validation benign requests refused (the refusal keywords, as
  notebook 03's over-refusal rate).

:func:`choose_rho` then applies the rule fixed in the profile before any run: the largest candidate
whose model stays within ``rho_loss_margin`` nats of SFT's loss and within ``rho_hs_margin`` and
``rho_refusal_margin`` points of SFT's HS and benign refusal. Vaccine trades alignment fit for
robustness as rho grows (its perturbed loss is what it minimises), so the rule takes the most robust
rho that still aligns as well as SFT by every measure the alignment data allows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignlab import data
from alignlab.cache import read_json, stage_dir, timed, write_json
from alignlab.profile import Run

# The code measure() runs: its source is hashed into the stage's key (tests/unit/test_cache.py).
CODE = ("vaccine.rho_choice", "training", "models", "chat", "shards", "data", "responses")
# Modules it imports without running them: how aligned models are found (their own keys hash their
# code), the profile (its values enter the key as parameters), and the scoring of cached answers.
NOT_RUN = ("vaccine.stages", "profile", "scoring", "judges.audit")


def validation_set(run: Run) -> dict[str, list[dict]]:
    """``n_rho_validation`` harmful prompts with our refusals and as many benign requests with their
    helpful answers, drawn by the data seed from the alignment data's sources outside every split
    (and, offline, outside every labels file: :func:`alignlab.judges.audit.fresh_prompts`)."""
    from alignlab.judges.audit import fresh_prompts

    p, s = run.profile, run.splits
    n = p.n_rho_validation
    if p.safety_source == "offline":
        prompts = fresh_prompts(run, n, seed=p.data_seed)
        harmful = [data.record(q, a, source="rho_validation", id=str(i)) for i, (q, a)
                   in enumerate(zip(prompts, data.cached_responses(prompts, "refusal", p.data_seed)))]
    else:  # BeaverTails' own safe rows, one per prompt, outside every split
        used = {r["prompt"] for r in s.alignment + s.harmful_ft + s.harmful_eval}
        pool = list({r["prompt"]: r for r in data.load_dataset("beavertails_safe") if r["prompt"] not in used}.values())
        harmful = data.take(pool, {"v": n}, p.data_seed, "BeaverTails safe rows outside the splits")["v"]
    benign = data.helpful_records(n, seed=p.data_seed, sources=p.helpful_sources, max_chars=p.helpful_max_chars,
                                  exclude=s.helpful + s.benign_eval + s.task_train + s.task_eval)
    return {"harmful": harmful, "benign": benign}


def _sample_losses(model, tokenizer, records, max_length: int) -> list[float]:
    """Each sample's mean loss over its response tokens (prompt masked, as in training)."""
    import torch

    from alignlab.training import make_batches

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        return [float(model(**{k: v.to(device) for k, v in batch.items()}).loss)
                for batch in make_batches(tokenizer, records, batch_size=1, max_length=max_length)]


def measure(run: Run, aligned: str) -> dict:
    """One aligned model on :func:`validation_set`: per-sample losses and greedy answers (cached)."""
    from alignlab.models import generate
    from alignlab.training import load_finetuned

    p = run.profile
    v = validation_set(run)
    records = v["harmful"] + v["benign"]
    out = stage_dir(p.name, "rho_validation", code=CODE, aligned=aligned, data=[r["prompt"] + r["response"] for r in records],
                    max_length=p.max_length, max_new_tokens=p.max_new_tokens, batch_size=p.eval_batch_size) / "answers.json"
    done = read_json(out)
    if done is not None:
        return done
    with timed(p.name, "rho_validation"):
        model, tokenizer = load_finetuned(Path(aligned), None)
        losses = _sample_losses(model, tokenizer, records, p.max_length)
        answers = generate(model, tokenizer, [r["prompt"] for r in records], p.max_new_tokens, p.eval_batch_size,
                           desc="validation prompts")
        n = len(v["harmful"])
        result = {kind: [{"prompt": r["prompt"], "answer": a, "loss": loss}
                         for r, a, loss in zip(rows, answers[start:], losses[start:])]
                  for kind, rows, start in (("harmful", v["harmful"], 0), ("benign", v["benign"], n))}
        write_json(out, result)
    return result


def candidate_table(run: Run, judges: dict) -> pd.DataFrame:
    """One row per candidate rho: the validation loss (harmful and benign samples pooled, and each
    apart), HS under the first of ``judges`` and benign refusal (:func:`alignlab.scoring.score`), in
    %, with the counts they rest on. A sample with no answer token left after truncation has no
    loss, and is counted apart (``n_no_loss``)."""
    from alignlab.scoring import score
    from alignlab.vaccine.stages import rho_candidate_models

    name = next(iter(judges))
    rows = []
    for rho, model in rho_candidate_models(run).items():
        m = measure(run, model)
        rates = score({"harmful": m["harmful"], "task": [], "benign": m["benign"]}, {name: judges[name]})
        losses = {kind: np.array([r["loss"] for r in m[kind]], dtype=float) for kind in ("harmful", "benign")}
        pooled = np.concatenate(list(losses.values()))
        rows.append({"rho": rho, "loss": float(np.nanmean(pooled)), "loss_refusals": float(np.nanmean(losses["harmful"])),
                     "loss_helpful": float(np.nanmean(losses["benign"])), "hs": rates[f"hs_{name}"],
                     "benign_refusal": rates["benign_refusal"], "n_harmful": len(m["harmful"]),
                     "n_benign": len(m["benign"]), "n_no_loss": int(np.isnan(pooled).sum())})
    return pd.DataFrame(rows)


def choose_rho(table: pd.DataFrame, loss_margin: float, hs_margin: float, refusal_margin: float) -> dict:
    """The largest rho whose row is within the margins of SFT's (rho 0) row: loss at most
    ``loss_margin`` above, HS and benign refusal at most their margins (points) above. Each row's
    ``within`` says which margins it keeps."""
    if 0 not in set(table["rho"]):
        raise ValueError("rho_candidates must include 0 (SFT), the reference every margin is measured from")
    sft = table.loc[table["rho"] == 0].iloc[0]
    within = {}
    for _, row in table.iterrows():
        within[float(row["rho"])] = {"loss": bool(row["loss"] <= sft["loss"] + loss_margin),
                                     "hs": bool(row["hs"] <= sft["hs"] + hs_margin),
                                     "benign_refusal": bool(row["benign_refusal"] <= sft["benign_refusal"] + refusal_margin)}
    allowed = [rho for rho, kept in within.items() if all(kept.values())]
    return {"rho": max(allowed), "within": within,
            "rule": f"the largest rho within {loss_margin:g} nats of SFT's validation loss and within "
                    f"{hs_margin:g} / {refusal_margin:g} points of its validation HS / benign refusal"}
