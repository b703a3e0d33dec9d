"""Vaccine (Huang, Hu, Liu; NeurIPS 2024): perturbation-aware alignment against harmful fine-tuning.

    trainer      VaccineConfig / VaccineTrainer (worst-case or, for the ablation, random eps), vaccine_spec
    attention    the attention modules Vaccine perturbs and drift measures
    defenses     the authors' fine-tuning-stage baselines: KL and EWC trainers
    drift        harmful embedding drift during fine-tuning
    stages       the cached stages and sweeps that notebooks 01-04 call

Training, evaluation, scoring and the HS judges are shared with the extraction study and live in
the core (alignlab.training, alignlab.evaluation, alignlab.scoring, alignlab.judges).
"""
