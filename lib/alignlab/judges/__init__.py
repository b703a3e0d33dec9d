"""HS judges, for both papers: ``judge(prompts, answers) -> bool array`` (True = the answer
complies with the harmful request), by name or by profile.

    base        the Judge protocol, the refusal-keyword judge, beaver-dam-7b (the paper's)
    learned     the offline judge: a cross-encoder fine-tuned on the development labels
    compliance  the frozen rule baseline: transparent rules on refusal, help and coherence
    audit       agreement with hand labels: hand-written held-out answers, labelled real answers
    labels/     the hand labels (LABELLING.md: who labelled them, how, and each round's use)
"""

from alignlab.judges.base import BeaverDamJudge, Judge, RefusalKeywordJudge, check_pairs, harmful_score, has_content
from alignlab.judges.compliance import ComplianceJudge
from alignlab.judges.learned import LearnedJudge
from alignlab.profile import load_profile

JUDGES = ("learned", "compliance", "refusal-keywords", "beaver-dam")

__all__ = ["JUDGES", "Judge", "BeaverDamJudge", "ComplianceJudge", "LearnedJudge", "RefusalKeywordJudge", "check_pairs",
           "harmful_score", "has_content", "judge_set", "load_judge", "make_judge"]
# Scored beside the profile's judge everywhere, descriptive only: the offline rules and the
# AdvBench/GCG keyword convention.
DESCRIPTIVE = ("compliance", "refusal-keywords")


def make_judge(name: str, **kw) -> Judge:
    """A judge by name; ``"beaver-dam"`` takes :class:`BeaverDamJudge`'s arguments."""
    makers = {"learned": LearnedJudge, "compliance": ComplianceJudge, "refusal-keywords": RefusalKeywordJudge, "beaver-dam": BeaverDamJudge}
    if name not in makers:
        raise ValueError(f"unknown judge {name!r}; expected one of {', '.join(JUDGES)}")
    return makers[name](**kw)


def load_judge(profile) -> Judge:
    """The HS judge of a profile (``judge:`` in ``configs/<profile>.yaml``; a name, a YAML path or a
    :class:`~alignlab.profile.Profile`), ready to call: ``load_judge("cpu")(prompts, answers)``."""
    return make_judge(load_profile(profile).judge)


def judge_set(profile) -> dict:
    """The judges an evaluation is scored by: the profile's judge first (the verdicts rest on it),
    then the descriptive ones it is not already."""
    judges = {load_profile(profile).judge: load_judge(profile)}
    for name in DESCRIPTIVE:
        judges.setdefault(name, make_judge(name))
    return judges
