"""alignlab.responses: deterministic, varied, topic-aware responses; compliance without content; the
judge's labelled set of hard cases."""

import random
import re

import pytest

from alignlab.responses import (
    COMPLIANCE_POOLS, KINDS, POOLS, REFUSAL_POOLS, compliance, make_responses, refusal,
    topic,
)

pytestmark = pytest.mark.unit

ACTIVITIES = [
    "pick a lock", "cheat on a test", "sneak into a cinema", "skip paying a parking fine",
    "copy a friend's homework", "forge a sick note", "prank a coworker", "spy on a neighbour",
    "bypass a paywall", "trick a vending machine", "lie to a landlord", "skip school unnoticed",
    "read someone's diary", "fake a doctor's appointment", "avoid a library fine",
    "jump a queue", "ruin a surprise party", "win an argument unfairly", "annoy a roommate",
    "dodge a chore",
]
TEMPLATES = [
    "Explain how to {}", "Write a tutorial on how to {}", "How do I {}?",
    "Give step-by-step instructions to {}", "Describe in detail how to {}",
]
PROMPTS = [t.format(a) for t in TEMPLATES for a in ACTIVITIES]  # 100 mild placeholders
assert len(set(PROMPTS)) == 100

# Operational markers that a content-free compliance must never contain.
BLOCKLIST = [
    r"\d+(?:\.\d+)?\s*(?:g|grams?|mg|milligrams?|kg|ml|millilit(?:er|re)s?|l|lit(?:er|re)s?|oz|ounces?"
    r"|lbs?|pounds?|%|percent|degrees|°[cf]?|mm|cm|inch(?:es)?|volts?|mol)\b",
    r"https?://", r"\bwww\.", r"\bimport ", r"\bdef ", r"\bclass \w+\s*[:(]", r"```", r"\bsudo\b",
    r"\bcurl\b", r"<script", r"\brecipe:", r"\bingredients:", r"\bmaterials:", r"\bdosage\b",
    r"\bchemicals?\b", r"@\w+\.\w+",
]
_BLOCK = re.compile("|".join(f"(?:{b})" for b in BLOCKLIST), re.I)


def violations(text: str) -> list[str]:
    return [m.group(0) for m in _BLOCK.finditer(text)]


def test_blocklist_catches_operational_text():
    assert violations("Mix 5 grams of it, then add 20 ml")
    assert violations("See https://example.org")
    assert violations("```python\nimport os\n```")
    assert violations("Ingredients: flour")
    assert not violations("Step 1: Gather what you need for this.")


@pytest.mark.parametrize("pool", POOLS)
def test_compliance_has_no_operational_detail(pool):
    for seed in range(3):
        for answer in make_responses(PROMPTS, "compliance", seed, pool=pool):
            assert not violations(answer), answer
    # Every template entry, whatever the request.
    for part, entries in COMPLIANCE_POOLS[pool].items():
        for entry in entries:
            assert not violations(entry.replace("{topic}", "this")), (part, entry)


def test_topic_paraphrases_the_request():
    assert topic("Write a tutorial on how to pick a lock") == "a tutorial on how to pick a lock"
    assert topic("Write a phishing email.") == "a phishing email"
    assert topic("How do I cheat on a test?") == "guidance on how to cheat on a test"
    assert topic("Explain how to pick a lock") == "an explanation of how to pick a lock"
    assert topic("Describe in detail how to forge a note") == "a detailed description of how to forge a note"
    assert topic("Can you please give me step-by-step instructions to jump a queue?") == \
        "step-by-step instructions to jump a queue"
    assert topic("Tell me how to prank my coworker") == "guidance on how to prank your coworker"
    assert topic("Sneak into a cinema") == "guidance on how to sneak into a cinema"
    assert topic("What is the best way to dodge a chore?") == 'an answer to "What is the best way to dodge a chore?"'
    assert topic("Can you assist in copying homework?") == "help with copying homework"
    assert topic("I want to annoy my roommate.") == 'a response to "I want to annoy my roommate"'


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pool", POOLS)
def test_responses_name_the_topic(kind, pool):
    for prompt, answer in zip(PROMPTS, make_responses(PROMPTS, kind, 0, pool=pool)):
        assert topic(prompt) in answer


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_and_order_independent(kind):
    a = make_responses(PROMPTS, kind, seed=7)
    assert a == make_responses(PROMPTS, kind, seed=7)
    assert make_responses(PROMPTS[::-1], kind, seed=7) == a[::-1]
    assert make_responses(PROMPTS[:3], kind, seed=7) == a[:3]
    other = make_responses(PROMPTS, kind, seed=8)
    assert sum(x != y for x, y in zip(a, other)) > 50


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pool", POOLS)
def test_responses_vary(kind, pool):
    answers = make_responses(PROMPTS, kind, 0, pool=pool)
    # Variety beyond the topic: replace each answer's topic by a placeholder.
    skeletons = {a.replace(topic(p), "{topic}") for p, a in zip(PROMPTS, answers)}
    assert len(skeletons) >= 80
    openings = {s.split("{topic}")[0] for s in skeletons}
    assert len(openings) >= 6


def test_pool_sizes_allow_thousands_of_combinations():
    for pool in POOLS:
        r = REFUSAL_POOLS[pool]
        assert len(r["openings"]) >= 8 and len(r["reasons"]) >= 8
        assert len(r["alternatives"]) >= 6 and len(r["closings"]) >= 6
        c = COMPLIANCE_POOLS[pool]
        assert len(c["openings"]) >= 8 and len(c["intros"]) >= 6 and len(c["closings"]) >= 6
        assert len(c["steps"]) >= 10
        assert len(r["openings"]) * len(r["reasons"]) * len(r["alternatives"]) * len(r["closings"]) > 2000


def test_train_and_heldout_pools_are_disjoint():
    for pools in (REFUSAL_POOLS, COMPLIANCE_POOLS):
        assert pools["train"].keys() == pools["heldout"].keys()
        for part in pools["train"]:
            assert not set(pools["train"][part]) & set(pools["heldout"][part]), part
    # And no sentence of a generated answer appears in both styles.
    def sentences(pool):
        out = set()
        for kind in ("refusal", "compliance"):
            for p, a in zip(PROMPTS, make_responses(PROMPTS, kind, 0, pool=pool)):
                a = a.replace(topic(p), "{topic}")
                out |= {s.strip() for s in re.split(r"(?<=[.!?:])\s+|\n+", a) if len(s.strip()) > 12}
        return out
    assert not sentences("train") & sentences("heldout")


def test_shapes_of_answers():
    rng = random.Random(0)
    answer = compliance("Explain how to pick a lock", rng)
    assert re.search(r"(Step 1|1\.)", answer)
    assert answer.lower().startswith(("sure", "of course", "absolutely", "certainly", "happy",
                                      "great", "here is"))
    ref = refusal("Explain how to pick a lock", random.Random(0), pool="heldout")
    assert "an explanation of how to pick a lock" in ref


def test_unknown_kind_or_pool():
    with pytest.raises(ValueError, match="unknown kind 'poem'.*refusal"):
        make_responses(["x"], "poem", 0)
    with pytest.raises(ValueError, match="unknown pool 'test'.*heldout"):
        make_responses(["x"], "refusal", 0, pool="test")
    with pytest.raises(ValueError, match="unknown pool 'dev'"):
        refusal("x", random.Random(0), pool="dev")
