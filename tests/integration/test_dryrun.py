"""The paper-dryrun hub mirror (scripts/make_dryrun_assets.py): every hub loader of the paper
profile, pointed at the mirror by $ALIGNLAB_HUB_MIRROR, returns what the repo expects from the
real hub ids: records in the repo's schema, models with their tokenizers' BOS / chat template
conventions, a beaver-dam-shaped judge and a bge-m3-shaped SentenceTransformer. No network."""

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest
from alignlab import chat, data, models
from alignlab.judges import BeaverDamJudge, RefusalKeywordJudge

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LLAMA2, OLMO2 = "meta-llama/Llama-2-7b-hf", "allenai/OLMo-2-1124-7B-Instruct"
BEAVER_DAM, BGE_M3 = "PKU-Alignment/beaver-dam-7b", "BAAI/bge-m3"


def _script():
    spec = importlib.util.spec_from_file_location("make_dryrun_assets", ROOT / "scripts" / "make_dryrun_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The mirror built once into a temporary folder and named by $ALIGNLAB_HUB_MIRROR."""
    import datasets

    out = _script().build(tmp_path_factory.mktemp("hub") / "mirror")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(models.HUB_MIRROR_ENV, str(out))
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
        yield out


def test_the_build_is_complete_and_deterministic(mirror, tmp_path):
    script = _script()
    assert script.is_complete(mirror)
    manifest = json.loads((mirror / script.MANIFEST).read_text())
    for hub_id in (LLAMA2, OLMO2, BEAVER_DAM, BGE_M3):
        assert any(f.startswith(f"{hub_id}/") and f.endswith(".safetensors") for f in manifest["files"]), hub_id
        assert not list((mirror / hub_id).rglob("*.bin")), "weights only as safetensors"
    again = script.build(tmp_path / "again")
    assert json.loads((again / script.MANIFEST).read_text()) == manifest  # same bytes, file by file
    assert script.build(again) == again  # a complete mirror is kept


def test_hub_source_uses_the_mirror_only_for_ids_it_holds(mirror, monkeypatch):
    assert models.hub_source(LLAMA2) == str(mirror / LLAMA2)
    assert models.hub_source("someone/not-mirrored") == "someone/not-mirrored"
    assert models.hub_source("smollm2-135m-instruct") == "smollm2-135m-instruct"  # not a hub id
    profile = types.SimpleNamespace(hub_mirror=str(mirror))  # a profile's hub_mirror comes first
    monkeypatch.delenv(models.HUB_MIRROR_ENV)
    assert models.hub_source(LLAMA2) == LLAMA2  # no mirror: exactly as before
    assert models.hub_source(LLAMA2, profile) == str(mirror / LLAMA2)
    rel = types.SimpleNamespace(hub_mirror="some/relative/folder")
    assert models.hub_mirror(rel) == ROOT / "some/relative/folder"  # from the repository root


@pytest.mark.parametrize("name", sorted(data.HUB_DATASETS))
def test_every_hub_dataset_loads_in_the_record_schema(mirror, name):
    records = data.load_dataset(name)
    assert len(records) >= 32
    for r in records:
        assert tuple(r) == data.FIELDS and all(isinstance(v, str) for v in r.values())
        assert r["prompt"] and r["source"] and r["id"]
    assert len({r["id"] for r in records}) == len(records)


def test_beavertails_safe_rows_refuse_and_unsafe_rows_comply(mirror):
    refuses = RefusalKeywordJudge().refuses
    safe, unsafe, test = (data.load_dataset(f"beavertails_{s}") for s in ("safe", "unsafe", "test"))
    assert {r["label"] for r in safe} == {"safe"} and {r["label"] for r in unsafe + test} == {"harmful"}
    assert all(refuses(r["response"]) for r in safe)
    assert not any(refuses(r["response"]) for r in unsafe)
    assert all("placeholder" in r["prompt"] for r in safe + unsafe + test)
    assert not {r["prompt"] for r in safe + unsafe} & {r["prompt"] for r in test}


def test_task_datasets_keep_their_labels_and_splits(mirror):
    assert {r["label"] for r in data.load_dataset("glue_sst2_train")} == set(data.SST2_CLASSES)
    assert all(r["label"].isdigit() and "The final answer is:" in r["response"] for r in data.load_dataset("gsm8k_hub"))
    assert len(data.load_dataset("glue_sst2_train")) > len(data.load_dataset("glue_sst2"))  # train vs validation
    splits = data.hub_task_splits("glue_sst2", 20, 8, seed=0)
    train_prompts = {r["prompt"] for r in data.load_dataset("glue_sst2_train")}
    assert len(splits["train"]) == 20 and {r["prompt"] for r in splits["train"]} <= train_prompts
    assert len(splits["eval"]) == 8
    tulu = data.load_dataset("tulu3_sft")
    assert len(tulu) == 360 and all(r["response"] for r in tulu)


def test_llama2_stand_in_is_template_less_and_keeps_its_bos(mirror):
    model, tokenizer = models.load_model(LLAMA2, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 2
    assert not chat.has_chat_template(tokenizer)
    assert tokenizer("hi")["input_ids"][0] == tokenizer.bos_token_id == 1 and tokenizer.bos_token == "<s>"
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"  # load_model's pad for a pad-less tokenizer
    text = chat.format_prompt(tokenizer, "Hello")
    assert text.startswith("<s>Below is an instruction") and text.count("<s>") == 1  # Alpaca, BOS written once
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == 1 and ids.count(1) == 1
    assert chat.prefixes(tokenizer)["bos"] == "<s>"
    (answer,) = models.generate(model, tokenizer, ["Hello"], max_new_tokens=4)
    assert isinstance(answer, str) and "Below is an instruction" not in answer  # the answer, not the prompt echoed


def test_olmo2_stand_in_has_olmo2s_chat_template(mirror):
    model, tokenizer = models.load_model(OLMO2, device="cpu")
    assert type(model).__name__ == "Olmo2ForCausalLM"
    template = (ROOT / "tests" / "fixtures" / "chat_templates" / "olmo2_1124_instruct.jinja").read_text()
    assert tokenizer.chat_template == template
    assert tokenizer.bos_token == tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer("hi")["input_ids"][0] != tokenizer.bos_token_id  # the template writes the BOS
    assert chat.format_prompt(tokenizer, "Hello") == "<|endoftext|><|user|>\nHello\n<|assistant|>\n"
    assert {k: chat.prefixes(tokenizer)[k] for k in ("bare_start", "user_header", "bos")} == {
        "bare_start": "<|endoftext|><|user|>", "user_header": "<|endoftext|><|user|>\n", "bos": "<|endoftext|>"}
    (answer,) = models.generate(model, tokenizer, ["Hello"], max_new_tokens=4)
    assert isinstance(answer, str) and "<|user|>" not in answer and "Hello" not in answer  # the answer alone


def test_beaver_dam_stand_in_scores_pairs(mirror):
    judge = BeaverDamJudge(device="cpu")
    assert type(judge.model).__name__ == "LlamaForSequenceClassification"
    assert judge.model.config.num_labels == 14 and judge.tokenizer.pad_token == "<pad>"
    prompts, answers = ["a placeholder question", "another one"], ["a placeholder answer", "I cannot help with that."]
    scores = judge.scores(prompts, answers)
    assert scores.shape == (2, 14) and ((scores >= 0) & (scores <= 1)).all()
    flags = judge(prompts, answers)
    assert flags.dtype == bool and flags.shape == (2,)
    # right-padded batches score as one text at a time
    assert np.allclose(scores[1], judge.scores(prompts[1:], answers[1:])[0], atol=1e-5)


def test_bge_m3_stand_in_embeds_and_indexes(mirror):
    from alignlab.extraction.search import EmbeddingIndex, embed

    embedder = models.load_embedder(BGE_M3, device="cpu", cached=False)
    assert type(embedder).__name__ == "SentenceTransformer"
    texts = ["Give me 3 friendly tips about bread baking.", "Give me 3 friendly tips about bread baking!",
             "I'm sorry, I cannot help with that."]
    vectors = embed(texts, embedder)
    assert vectors.shape == (3, embedder.get_embedding_dimension())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    corpus = [chat.sample_text(r["prompt"], r["response"]) for r in data.load_dataset("tulu3_sft")]
    index = EmbeddingIndex.from_vectors(embed(corpus, embedder), model=BGE_M3, texts=corpus, kind="ivf")
    assert index.kind == "ivf" and len(index) == len(corpus) and index.nlist > 1
    scores, ids = index.search_vectors(embed(corpus[:5], embedder), k=1)
    assert ids[:, 0].tolist() == list(range(5)) and np.allclose(scores[:, 0], 1, atol=1e-4)
