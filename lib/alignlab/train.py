"""The training stages of a profile, outside the notebooks, for several processes (GPUs).

papermill under ``accelerate launch`` would run every notebook cell in every process, so the
notebooks train in one process. To train on several GPUs, run the stages first:

    accelerate launch --num_processes 5 -m alignlab.train --profile paper align attack
    make reproduce PROFILE=paper    # finds every trained stage in the cache

(The paper profile's global batch is 5, so the process count must divide 5.)

A profile's ``batch_size`` / ``finetune_batch_size`` is the global batch: each of N processes
takes 1/N of it, and the Vaccine perturbation is normalised over the global batch, so the
stages (and their cache keys) are those of a single-process run.
"""

import argparse

from alignlab import config, pipeline


def align_stages(p: dict) -> list[str]:
    """SFT and Vaccine alignment, and the Vaccine models of the rho sweep."""
    done = [pipeline.aligned_model(p, method) for method in pipeline.ALIGNED]
    done += [pipeline.aligned_model(p, "vaccine", rho=rho) for rho in p["rhos"] if rho != 0]
    return done


def attack_stages(p: dict) -> list[str]:
    """User fine-tuning of each aligned model at every harmful ratio and seed (notebook 02), and
    of the rho sweep's models (notebook 04)."""
    done = [pipeline.attack(p, method, ratio, seed)["adapter"]
            for method in pipeline.ALIGNED for ratio in p["harmful_ratios"] for seed in p["seeds"]]
    done += [pipeline.attack(p, "vaccine", p["rho_sweep_ratio"], p["seeds"][0], rho=rho)["adapter"]
             for rho in p["rhos"] if rho != 0]
    return done


STAGES = {"align": align_stages, "attack": attack_stages}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="smoke, cpu, paper or a path to a YAML profile")
    parser.add_argument("stages", nargs="+", choices=sorted(STAGES))
    args = parser.parse_args(argv)
    p = config.setup_run(config.load_profile(args.profile))
    for stage in args.stages:
        for path in STAGES[stage](p):
            print(f"{stage}: {path}")


if __name__ == "__main__":
    main()
