"""The heavy stages of a profile, outside the notebooks, for several processes (GPUs).

papermill under ``accelerate launch`` would run every notebook cell in every process, so the
notebooks run in one process. To use several GPUs, run the stages first:

    accelerate launch --num_processes 5 -m alignlab.train --profile paper align attack evaluate sample
    make reproduce PROFILE=paper    # finds every stage in the cache

(The paper profile's global batch is 5, so the process count must divide 5 for training.
``evaluate`` and ``sample`` take any process count once the models they read are trained: they
train what is missing, under the same rule.)

align, attack: data-parallel training (below). evaluate: the answers of notebooks 03-04, each
process answering a share of the prompt batches. sample: the generations of notebook 05, each
process sampling a share of the batches. extras: the alignments, attacks and evaluations of
notebook 09 (``make extras``). Only the main process writes a stage, and what it writes is what
one process would write (alignlab.shards).

A profile's ``batch_size`` / ``finetune_batch_size`` is the global batch: each of N processes
takes 1/N of it, and the Vaccine perturbation is normalised over the global batch, so the
stages (and their cache keys) are those of a single-process run.
"""

import argparse

from alignlab.extraction import stages as extraction_stages
from alignlab.profile import ConfigError, available_profiles, setup_run
from alignlab.shards import processes
from alignlab.vaccine import stages

STAGES = {"align": stages.align_stages, "attack": stages.attack_stages, "evaluate": stages.evaluate_stages,
          "sample": extraction_stages.sample_stages, "extras": stages.extras_stages}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help=f"one of {', '.join(available_profiles())} or a YAML path")
    parser.add_argument("stages", nargs="+", choices=sorted(STAGES))
    args = parser.parse_args(argv)
    try:
        run = setup_run(args.profile)
    except ConfigError as e:  # a profile or machine that cannot run: the message is the whole story
        parser.exit(2, f"alignlab.train: {e}\n")
    try:
        for stage in args.stages:
            done = STAGES[stage](run)
            if processes().is_main_process:
                print(f"{stage}: done ({len(done)} results)")
    finally:
        # Under accelerate launch, take the process group down while Python is still whole: left to
        # interpreter shutdown, gloo's worker threads can abort the exit (SIGABRT, "terminate called
        # without an active exception"; pytorch/pytorch#190489). In one process there is none.
        processes().destroy_process_group()


if __name__ == "__main__":
    main()
