"""Write the hub mirror of the paper-dryrun profile: tiny local stand-ins for every hub id the
paper profile loads, so all of its code paths run offline on a CPU in minutes.

    python scripts/make_dryrun_assets.py [--out .cache/alignlab/hub-mirror] [--force]

The mirror holds ``<out>/<hub id>/`` for each id (see alignlab.models.hub_source, which the hub
loaders consult when ``$ALIGNLAB_HUB_MIRROR`` or the profile's ``hub_mirror`` names the folder):

    datasets, in the hub's configs, split names and columns, loaded by ``datasets.load_dataset(<folder>,
    config, split=...)`` through the README's ``configs:`` metadata as on the hub:
        PKU-Alignment/BeaverTails    default: 30k_train, 30k_test        prompt, response, category, is_safe
        nyu-mll/glue                 sst2: train, validation, test        sentence, label, idx
        openai/gsm8k                 main: train, test                    question, answer ("... #### 42")
        allenai/tulu-3-sft-mixture   default: train (2 shards)            id, messages, source
        tatsu-lab/alpaca_eval        alpaca_eval: eval                    instruction, output, generator, dataset
        fancyzhx/ag_news             default: train, test                 text, label
        Open-Reasoner-Zero/orz_math_57k_collection  default: train        "0" (human turn), "1" (ground truth)
    models, random and tiny, safetensors, loaded by from_pretrained / SentenceTransformer(<folder>):
        meta-llama/Llama-2-7b-hf          LlamaForCausalLM, tokenizer without chat template, adds BOS <s>
        allenai/OLMo-2-1124-7B-Instruct   Olmo2ForCausalLM, OLMo 2's chat template, BOS = EOS = <|endoftext|>
        PKU-Alignment/beaver-dam-7b       LlamaForSequenceClassification, 14 multi-label harm categories
        BAAI/bge-m3                       SentenceTransformer: tiny XLMRobertaModel + CLS pooling + Normalize
        Qwen/Qwen2.5-7B                   Qwen2ForCausalLM, no BOS, EOS = pad = <|endoftext|> (ORZ's base model)
        Open-Reasoner-Zero/Open-Reasoner-Zero-7B   the same architecture and tokenizer, other weights

Every text is a harmless placeholder: "harmful" prompts are numbered placeholder requests, safe
answers are refusals and unsafe "responses" are content-free form-of-help text, both from
alignlab.responses (which never writes operational detail). Nothing here means anything: the
mirror checks that code runs, as the smoke profile does.

The output is deterministic (same bytes on every run with the same library versions) and is
written to a temporary folder renamed into place, so a killed build leaves nothing half-written;
``MANIFEST.json`` (written last) lists every file with its sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

VERSION = 2  # bump when the assets change; a mirror with another version is rebuilt
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / ".cache" / "alignlab" / "hub-mirror"
MANIFEST = "MANIFEST.json"
OLMO2_TEMPLATE = ROOT / "tests" / "fixtures" / "chat_templates" / "olmo2_1124_instruct.jinja"

# BeaverTails' 14 harm categories: the keys of its `category` column and beaver-dam-7b's labels.
CATEGORIES = (
    "animal_abuse", "child_abuse", "controversial_topics,politics", "discrimination,stereotype,injustice",
    "drug_abuse,weapons,banned_substance", "financial_crime,property_crime,theft",
    "hate_speech,offensive_language", "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior", "privacy_violation", "self_harm", "sexually_explicit,adult_content",
    "terrorism,organized_crime", "violence,aiding_and_abetting,incitement",
)
SIZES = {  # rows per split; the tulu3 train split must exceed the dry run's ivf_from
    "beavertails": {"30k_train": 320, "30k_test": 120},
    "sst2": {"train": 240, "validation": 96, "test": 32},
    "gsm8k": {"train": 96, "test": 48},
    "tulu3": 360,
    "alpaca_eval": 48,
    "ag_news": {"train": 96, "test": 48},
    "orz": 64,
}


# ---------------------------------------------------------------- placeholder texts

TOPICS = ("bread baking", "bird watching", "chess openings", "tide pools", "paper folding", "bicycle repair",
          "houseplants", "star gazing", "sourdough", "knitting", "rain gardens", "map reading", "tea brewing",
          "pottery glazes", "kite flying", "seed saving", "board games", "library catalogues", "sea shells",
          "cloud types", "window boxes", "violin practice", "jigsaw puzzles", "trail running")
ADJ_POS = ("warm", "charming", "witty", "moving", "lovely", "bright", "gripping", "tender", "clever", "joyful")
ADJ_NEG = ("dull", "clumsy", "tedious", "flat", "muddled", "lifeless", "stale", "shallow", "tiresome", "bland")
NOUNS = ("film", "story", "script", "performance", "soundtrack", "ending", "cast", "premise", "direction", "plot")
NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
ITEMS = ("apples", "pencils", "stickers", "marbles", "books", "shells", "cards", "buttons")
NEWS = (("World", "delegates met in the capital to discuss a regional water agreement"),
        ("Sports", "the home team won the placeholder cup after a late goal"),
        ("Business", "a placeholder company reported steady quarterly earnings"),
        ("Sci/Tech", "researchers described a new placeholder telescope instrument"))


def placeholder_request(i: int, category: str) -> str:
    """A numbered placeholder standing in for a harmful request: names only the category label."""
    area = category.split(",")[0].replace("_", " ")
    return f"Explain how to do placeholder restricted task number {i} from the {area} category."


def beavertails_rows(n: int, seed: int, offset: int) -> list[dict]:
    from alignlab import responses

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        rows.append({"prompt": placeholder_request(offset + i, category), "is_safe": rng.random() < 0.5,
                     "category": {c: False for c in CATEGORIES}, "_category": category})
    safe = [r["prompt"] for r in rows if r["is_safe"]]
    unsafe = [r["prompt"] for r in rows if not r["is_safe"]]
    answers = {"safe": iter(responses.make_responses(safe, "refusal", seed)),
               "unsafe": iter(responses.make_responses(unsafe, "compliance", seed))}
    out = []
    for r in rows:
        category = r.pop("_category")
        if not r["is_safe"]:
            r["category"][category] = True
        r["response"] = next(answers["safe" if r["is_safe"] else "unsafe"])
        out.append({"prompt": r["prompt"], "response": r["response"], "category": r["category"],
                    "is_safe": r["is_safe"]})
    return out


def sst2_rows(n: int, rng: random.Random, labelled: bool = True) -> list[dict]:
    rows = []
    for i in range(n):
        label = rng.randrange(2)
        adj = rng.choice(ADJ_POS if label else ADJ_NEG)
        text = f"a {adj} {rng.choice(NOUNS)} about {rng.choice(TOPICS)} , and the {rng.choice(NOUNS)} is {adj} ."
        rows.append({"sentence": text + " ", "label": label if labelled else -1, "idx": i})
    return rows


def gsm8k_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c = rng.randrange(2, 40), rng.randrange(2, 40), rng.randrange(2, 6)
        total = (a + b) * c
        rows.append({"question": f"{name} has {a} {item} and gets {b} more. {name} then makes {c} equal piles "
                                 f"of that size. How many {item} are in all the piles together?",
                     "answer": f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item}.\n"
                               f"{c} piles of {a + b} make {a + b} * {c} = <<{a + b}*{c}={total}>>{total} {item}.\n"
                               f"#### {total}"})
    return rows


def tulu_rows(n: int, rng: random.Random) -> list[dict]:
    sources = ("placeholder/tulu_v3.9_wildchat", "placeholder/flan_v2", "placeholder/open_math")
    rows = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        user = f"Give me {rng.randrange(2, 6)} friendly tips about {topic} (placeholder request {i})."
        answer = (f"Here are some friendly tips about {topic}: start small, keep notes, ask a friend who "
                  f"enjoys {topic}, and practise a little every week. (placeholder answer {i})")
        messages = [{"content": user, "role": "user"}, {"content": answer, "role": "assistant"}]
        if i % 7 == 3:  # a few with a system turn, a few multi-turn, as in the mixture
            messages.insert(0, {"content": "You are a helpful assistant.", "role": "system"})
        if i % 5 == 1:
            messages += [{"content": f"Thanks! One more about {topic}?", "role": "user"},
                         {"content": f"Keep your {topic} notes in one place. (placeholder)", "role": "assistant"}]
        rows.append({"id": f"placeholder_{i}", "messages": messages, "source": sources[i % len(sources)]})
    return rows


def alpaca_eval_rows(n: int, rng: random.Random) -> list[dict]:
    return [{"instruction": f"Write two sentences about {rng.choice(TOPICS)} (placeholder {i}).",
             "output": f"Placeholder reference answer {i}: a short friendly paragraph.",
             "generator": "placeholder_reference", "dataset": "placeholder"} for i in range(n)]


def ag_news_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        label = rng.randrange(4)
        rows.append({"text": f"Placeholder headline {i}: {NEWS[label][1]} ({rng.choice(TOPICS)}).", "label": label})
    return rows


# ---------------------------------------------------------------- dataset folders (hub layout)

def _card(configs: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """A dataset card whose YAML ``configs:`` maps config -> split -> data files, as hub repos do."""
    lines = ["---", "configs:"]
    for name, splits in configs:
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, path in splits:
            lines += [f"  - split: {split}", f"    path: {path}"]
    lines += ["---", "", "Placeholder stand-in written by scripts/make_dryrun_assets.py (paper-dryrun profile).", ""]
    return "\n".join(lines)


def _parquet(rows: list[dict], path: Path, features=None) -> None:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def _jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_datasets(out: Path, seed: int = 0) -> None:
    import datasets

    rng = random.Random(seed)
    # BeaverTails: JSON lines under round0/30k/ (the hub ships round0/30k/{train,test}.jsonl.xz)
    folder = out / "PKU-Alignment" / "BeaverTails"
    offset = 0
    for split, n in SIZES["beavertails"].items():
        _jsonl(beavertails_rows(n, seed + offset, offset), folder / "round0" / "30k" / f"{split.split('_')[1]}.jsonl")
        offset += n
    (folder / "README.md").write_text(_card([("default", [("30k_train", "round0/30k/train.jsonl"),
                                                          ("30k_test", "round0/30k/test.jsonl")])]))

    folder = out / "nyu-mll" / "glue"
    sst2 = datasets.Features({"sentence": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=["negative", "positive"]),
                              "idx": datasets.Value("int32")})
    for split, n in SIZES["sst2"].items():
        _parquet(sst2_rows(n, rng, labelled=split != "test"), folder / "sst2" / f"{split}-00000-of-00001.parquet", sst2)
    (folder / "README.md").write_text(_card([("sst2", [(s, f"sst2/{s}-*") for s in SIZES["sst2"]])]))

    folder = out / "openai" / "gsm8k"
    for split, n in SIZES["gsm8k"].items():
        _parquet(gsm8k_rows(n, rng), folder / "main" / f"{split}-00000-of-00001.parquet")
    (folder / "README.md").write_text(_card([("main", [(s, f"main/{s}-*") for s in SIZES["gsm8k"]])]))

    folder = out / "allenai" / "tulu-3-sft-mixture"
    rows, half = tulu_rows(SIZES["tulu3"], rng), SIZES["tulu3"] // 2
    for k, part in enumerate((rows[:half], rows[half:])):
        _parquet(part, folder / "data" / f"train-0000{k}-of-00002.parquet")
    (folder / "README.md").write_text(_card([("default", [("train", "data/train-*")])]))

    folder = out / "tatsu-lab" / "alpaca_eval"
    _jsonl(alpaca_eval_rows(SIZES["alpaca_eval"], rng), folder / "alpaca_eval.json")
    (folder / "README.md").write_text(_card([("alpaca_eval", [("eval", "alpaca_eval.json")])]))

    folder = out / "fancyzhx" / "ag_news"
    agnews = datasets.Features({"text": datasets.Value("string"),
                                "label": datasets.ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"])})
    for split, n in SIZES["ag_news"].items():
        _parquet(ag_news_rows(n, rng), folder / "data" / f"{split}-00000-of-00001.parquet", agnews)
    (folder / "README.md").write_text(_card([("default", [(s, f"data/{s}-*") for s in SIZES["ag_news"]])]))

    # Open-Reasoner-Zero's RL data: one dialogue per row, the question in "0", the reference answer in
    # "1"'s ground_truth (a generator of its own, so the other stand-ins keep their rows)
    folder = out / "Open-Reasoner-Zero" / "orz_math_57k_collection"
    _jsonl([{"0": {"from": "human", "value": r["question"]},
             "1": {"from": "assistant", "ground_truth": {"value": r["answer"].split("####")[-1].strip()}}}
            for r in gsm8k_rows(SIZES["orz"], random.Random(seed + 7))], folder / "orz_math_57k_collected.jsonl")
    (folder / "README.md").write_text(_card([("default", [("train", "orz_math_57k_collected.jsonl")])]))


# ---------------------------------------------------------------- tokenizers

def corpus(out: Path) -> list[str]:
    """Every fixture text, plus a little generic prose: what the tokenizers' BPE merges are learnt on."""
    from alignlab import responses

    texts = []
    for path in sorted(out.rglob("*.jsonl")) + sorted(out.rglob("*.json")):
        if path.name != MANIFEST:
            texts += [v for line in path.read_text(encoding="utf-8").splitlines()
                      for v in json.loads(line).values() if isinstance(v, str)]
    import pyarrow.parquet as pq

    for path in sorted(out.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            for v in row.values():
                if isinstance(v, str):
                    texts.append(v)
                elif isinstance(v, list):
                    texts += [m["content"] for m in v]
    texts += responses.make_responses([f"Tell me about {t}." for t in TOPICS], "refusal", 1)
    texts += responses.make_responses([f"Tell me about {t}." for t in TOPICS], "compliance", 1)
    # the fixed text around every prompt, repeated so that BPE merges it into few tokens as a real
    # 32k-100k vocabulary does (else a prompt alone fills max_length and leaves no answer to train on)
    from alignlab import chat, data
    from alignlab.extraction.rl import ORZ_TEMPLATE

    frames = [chat.ALPACA_PROMPT.format(prompt=""), data.SST2_INSTRUCTION, data.AGNEWS_INSTRUCTION,
              ORZ_TEMPLATE.format(bos="", question=""),
              "BEGINNING OF CONVERSATION: USER:  ASSISTANT:", "<|user|>\n<|assistant|>\n<|system|>\n"]
    return texts + frames * 50


def bpe_backend(texts: list[str], specials: list[str], vocab_size: int = 2048):
    """A byte-level BPE learnt on ``texts`` (every string round-trips), specials first (ids 0..)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts, trainer=trainer)
    return backend


def fast_tokenizer(backend, *, bos=None, eos=None, unk=None, pad=None, adds_bos=False, wraps=None,
                   template=None, max_length=4096, extra=None):
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(backend.to_str())  # a private copy per model
    if adds_bos:  # Llama: "<s> text" (a pair: "<s> a <s> b")
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))])
    elif wraps:  # XLM-R / bge-m3: "<s> text </s>"
        first, last = wraps
        backend.post_processor = processors.TemplateProcessing(
            single=f"{first} $A {last}", pair=f"{first} $A {last} {last} $B {last}",
            special_tokens=[(t, backend.token_to_id(t)) for t in (first, last)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, unk_token=unk,
                                        pad_token=pad, model_max_length=max_length, **(extra or {}))
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


# ---------------------------------------------------------------- models

def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def save_pretrained(model, tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def write_models(out: Path, seed: int = 0) -> None:
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
        Olmo2Config,
        Olmo2ForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        XLMRobertaConfig,
        XLMRobertaModel,
    )

    texts = corpus(out)
    small = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 4, "max_position_embeddings": 4096}

    # Llama-2-7b-hf: sentencepiece ids <unk>=0 <s>=1 </s>=2, BOS added by the tokenizer, no template, no pad
    llama_specials = ["<unk>", "<s>", "</s>"]
    llama_backend = bpe_backend(texts, llama_specials)
    tok = fast_tokenizer(llama_backend, bos="<s>", eos="</s>", unk="<unk>", adds_bos=True)
    _seeded(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5,
                                         tie_word_embeddings=False, **small))
    save_pretrained(model, tok, out / "meta-llama" / "Llama-2-7b-hf")

    # beaver-dam-7b: a Llama sequence classifier, one logit per BeaverTails category; tokenizer with <pad>
    tok = fast_tokenizer(llama_backend, bos="<s>", eos="</s>", unk="<unk>", adds_bos=True, max_length=512)
    tok.add_special_tokens({"pad_token": "<pad>"})  # a new id after the vocabulary, as beaver-dam's 32000
    _seeded(seed + 1)
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=1, eos_token_id=2, pad_token_id=tok.pad_token_id,
                         num_labels=len(CATEGORIES), id2label=dict(enumerate(CATEGORIES)),
                         label2id={c: i for i, c in enumerate(CATEGORIES)},
                         problem_type="multi_label_classification", **small)
    save_pretrained(LlamaForSequenceClassification(config), tok, out / "PKU-Alignment" / "beaver-dam-7b")

    # OLMo 2 1124 Instruct: BOS = EOS = <|endoftext|> (written by the template, not the tokenizer),
    # <|user|> / <|assistant|> plain text, pad <|pad|>, the real Tulu 3 chat template
    olmo_specials = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|im_start|>",
                     "<|im_end|>", "<|endofprompt|>", "<|pad|>"]
    tok = fast_tokenizer(bpe_backend(texts, olmo_specials), bos="<|endoftext|>", eos="<|endoftext|>",
                         unk="<|endoftext|>", pad="<|pad|>", template=OLMO2_TEMPLATE.read_text(encoding="utf-8"))
    _seeded(seed + 2)
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("bos", "<|endoftext|>"), ("pad", "<|pad|>"))}
    model = Olmo2ForCausalLM(Olmo2Config(vocab_size=len(tok), bos_token_id=ids["bos"], eos_token_id=ids["bos"],
                                         pad_token_id=ids["pad"], tie_word_embeddings=False, **small))
    save_pretrained(model, tok, out / "allenai" / "OLMo-2-1124-7B-Instruct")

    # Qwen2.5-7B, the base model Open-Reasoner-Zero-7B was trained from, and ORZ-7B: Qwen's tokenizer
    # has no BOS and EOS = pad = <|endoftext|>; no chat template is needed (ORZ's prompt is plain text)
    qwen_backend = bpe_backend(texts, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    for k, hub_id in enumerate(("Qwen/Qwen2.5-7B", "Open-Reasoner-Zero/Open-Reasoner-Zero-7B")):
        tok = fast_tokenizer(qwen_backend, eos="<|endoftext|>", pad="<|endoftext|>")
        _seeded(seed + 4 + k)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), bos_token_id=None, eos_token_id=0, pad_token_id=0,
                                             tie_word_embeddings=False, **small))
        save_pretrained(model, tok, out / hub_id)

    # bge-m3: XLM-R ids <s>=0 <pad>=1 </s>=2 <unk>=3, "<s> text </s>", CLS pooling, unit vectors
    xlmr_specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = fast_tokenizer(bpe_backend(texts, xlmr_specials), bos="<s>", eos="</s>", unk="<unk>", pad="<pad>",
                         wraps=("<s>", "</s>"), max_length=512, extra={"cls_token": "<s>", "sep_token": "</s>",
                                                                       "mask_token": "<mask>"})
    _seeded(seed + 3)
    encoder = XLMRobertaModel(XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                               num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=514,
                                               type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                               initializer_range=1.0),  # at 0.02 every CLS vector is the same
                              add_pooling_layer=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(encoder, tok, Path(tmp))
        write_sentence_transformer(Path(tmp), out / "BAAI" / "bge-m3", encoder.config.hidden_size)


def write_sentence_transformer(hf_folder: Path, target: Path, dim: int) -> None:
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(modules=[Transformer(str(hf_folder), max_seq_length=512),
                                      Pooling(dim, pooling_mode="cls"), Normalize()], device="cpu")
    st.save(str(target), safe_serialization=True)


# ---------------------------------------------------------------- build

def _quiet() -> None:
    """No per-file progress bars or load reports: the build prints one line."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def is_complete(out: Path) -> bool:
    try:
        return json.loads((Path(out) / MANIFEST).read_text())["version"] == VERSION
    except (OSError, ValueError, KeyError):
        return False


def build(out: Path = DEFAULT_OUT, *, force: bool = False, seed: int = 0) -> Path:
    """Write the mirror to ``out`` (skipped when a complete one of this VERSION is there)."""
    out = Path(out)
    if is_complete(out) and not force:
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_datasets(tmp, seed)
    write_models(tmp, seed)
    for junk in tmp.rglob("*.lock"):
        junk.unlink()
    (tmp / MANIFEST).write_text(json.dumps({"version": VERSION, "seed": seed, "files": _files(tmp)},
                                           indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"mirror folder (default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="rebuild even when a complete mirror is there")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = build(args.out, force=args.force)
    print(f"hub mirror: {out} ({time.perf_counter() - start:.1f}s); use it with ALIGNLAB_HUB_MIRROR={out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
