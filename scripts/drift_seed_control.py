"""Run-level negative control for the drift claim (CLAIMS.md): does a second attack seed of the
*same* method differ from the first as much as SFT and Vaccine differ?

Paired over the drift probe samples, the final harmful embedding drift (HED) of one trained model
per method says whether two models differ, not whether the difference survives a new training run.
This script runs user fine-tuning again at the top harmful ratio with another seed for both
aligned models (two cached attack stages, about 7 min on the cpu profile) and prints that paired
test for every pair: the claim's pair, each method against itself under the other seed (the
negative control: if it is as significant, the test cannot carry the claim, and alignlab.claims
takes the verdict over seeds instead), and the claim's pair under the new seed (a replication).
It controls attack-seed variation (sample order, LoRA initialisation), not alignment-run
variation: both seeds start from the same aligned model.

    python scripts/drift_seed_control.py --profile cpu --seed 1
"""

import argparse

import numpy as np

from alignlab.vaccine.verdicts import fmt_interval, paired_over_samples
from alignlab.profile import setup_run
from alignlab.vaccine.stages import ALIGNED, attack


def final_hed_per_sample(summary: dict) -> np.ndarray:
    last = max(summary["drift"], key=lambda point: point["step"])
    return np.asarray(last["hed_per_sample"], dtype=float)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=1, help="the second attack seed (the profile's first is the other)")
    args = parser.parse_args()
    run = setup_run(args.profile, verbose=False)
    top, first = max(run.profile.harmful_ratios), run.profile.seeds[0]
    if args.seed == first:
        parser.error(f"--seed {args.seed} is the profile's own seed; give another")
    hed = {(m, s): final_hed_per_sample(attack(run, m, top, s)) for m in ALIGNED for s in (first, args.seed)}
    pairs = {"claim: SFT - Vaccine": (("sft", first), ("vaccine", first)),
             f"control: SFT seed {first} - SFT seed {args.seed}": (("sft", first), ("sft", args.seed)),
             f"control: Vaccine seed {first} - Vaccine seed {args.seed}": (("vaccine", first), ("vaccine", args.seed)),
             f"replication: SFT - Vaccine, seed {args.seed}": (("sft", args.seed), ("vaccine", args.seed))}
    print(f"final HED per probe sample, p={top}, {args.profile} profile; paired over {len(hed[('sft', first)])} samples")
    for name, (a, b) in pairs.items():
        diffs = hed[a] - hed[b]
        mean, low, high, p_value = paired_over_samples(diffs)
        print(f"  {name:40s} {fmt_interval(mean, low, high)}, Wilcoxon p={p_value:.3f}, "
              f"{mean / hed[b].sum() * len(diffs):+.1%} of the second model's HED")


if __name__ == "__main__":
    main()
