"""The border rules of ``docs/labels.md`` (B1-B7, S1) as cue patterns.

Patterns find the sentences a border touches: candidates for the relabel pass
(``python -m pipeline data border-candidates``), and the realism checks of ``make data`` (how many
enforcement-with-reason sentences are labeled neutral, how many sentences are questions). A pattern
only *finds* candidates; the label is always a person's decision under the rule.
"""

from __future__ import annotations

import re

import pandas as pd

RULES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "S1")

_I = re.IGNORECASE
# B1: an enforcement or legal action, and its stated reason (the wrong).
ENFORCEMENT = re.compile(
    r"\b(?:fin(?:ed|es?|ing)|penalt(?:y|ies)|penali[sz]ed|charged|charges|sued|su(?:es|ing)|indicted|sanctioned|"
    r"banned|ordered|lawsuits?|class action|complaints?|consent order|prosecutors?|demanded|injunction|"
    r"enforcement|recall(?:ed)?|suspended|revoked)\b", _I)
STATED_WRONG = re.compile(
    r"\b(?:for (?:failing|allegedly|breaching|violating|misleading|hiding|concealing|overcharging|"
    r"falsifying|ignoring|not )|with (?:fraud|rigging|bribery|misleading|insider|manipulat|breach)|"
    r"alleg(?:ing|es|ed) that|alleging|claim(?:ed|ing) that|after (?:inspectors|investigators|"
    r"an? (?:investigation|inquiry|audit)) found)", _I)
PATTERNS: dict[str, re.Pattern[str]] = {
    "B2": re.compile(
        r"vigorously|without merit|meritless|groundless|unfounded|baseless|no merit|declined to comment|"
        r"did not (?:respond|return)|rumou?r|speculat\w*|\bden(?:y|ied|ies|ying|ial)\b|\breject\w*|"
        r"\bdisput\w*|\brefut\w*", _I),
    "B3": re.compile(
        r"(?:\bden(?:y|ied|ies)|reject\w*|dismiss\w*|baseless|false|untrue).{0,200}(?:critic|motiv|agenda|"
        r"never (?:read|visited|set foot|spoke)|activist|short seller|competitor|rival|hit job|witch|"
        r"revenge|disgruntled|inaccura|misread|misunderst)", _I),
    "B4": re.compile(
        r"\b(?:appear(?:s|ed)? (?:to be )?(?:upbeat|confident|calm|relaxed|uneasy|nervous|worried|"
        r"unconcerned|optimistic|sceptical|skeptical)|seem(?:s|ed)? (?:to be )?\w+|(?:is|are|was|were) said "
        r"to|fear(?:s|ed)? that|worr(?:y|ies|ied) that|expect(?:s|ed)? (?:the|a|an|that)|bet(?:s|ting)? "
        r"(?:that|on)|chatter|upbeat|uneasy|jittery|bullish|bearish|nervous)", _I),
    "B5": re.compile(
        r"\b(?:not|never|no longer) (?:confident|sure|worried|concerned|certain|expect\w*|optimistic)|"
        r"\bno doubt\b|^(?:if|unless)\b|[,“\"] ?(?:if|unless) (?:we|I|the)\b", _I),
    "B6": re.compile(r"\?|\bso-called\b|\bsupposedly\b|\bapparently\b|\bwhat a\b", _I),
    "B7": re.compile(
        r"^[A-Z][A-Z .,'-]{3,}(?:\(|,| —| -)|\((?:NYSE|NASDAQ|LSE|TSX|ASX)?:? ?[A-Z]{2,5}(?:\.[A-Z]{1,2})?\)|"
        r"Reporting by|Editing by|forward-looking|Copyright"),
    "S1": re.compile(
        r"baseless|nonsense|meritless|without merit|smear|\blie[sd]?\b|absurd|ridiculous|false|fabricat\w*|"
        r"fantasy|rubbish|scaremonger\w*|hysteri\w*|witch.?hunt|groundless|untrue|misleading|not supported|"
        r"no basis|\bwrong\b|incorrect|misrepresent\w*|distort\w*|irresponsible|reckless|outrageous|insult\w*|"
        r"desperate|politically motivated|inaccura\w*|sensational\w*|exaggerat\w*|overblown|alarmist", _I),
}


def enforcement_with_reason(text: pd.Series) -> pd.Series:
    """B1's core form: an enforcement or legal action and its stated wrong in one sentence."""
    return text.str.contains(ENFORCEMENT) & text.str.contains(STATED_WRONG)


def rule_hits(frame: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per rule: does the sentence carry that rule's cue?"""
    text = frame["text"]
    hits = {"B1": text.str.contains(ENFORCEMENT)}
    hits |= {rule: text.str.contains(pattern) for rule, pattern in PATTERNS.items()}
    # S1 is about the tone of denials: only dismissive sentences are candidates.
    hits["S1"] = hits["S1"] & (frame["stance"] == "dismissive")
    return pd.DataFrame(hits, index=frame.index)[list(RULES)]


def candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """Sentences that a border touches, with the rules they touch (``rules``: list of ids)."""
    hits = rule_hits(frame)
    touched = hits.any(axis=1)
    out = frame.loc[touched].copy()
    out["rules"] = [[r for r in RULES if row[r]] for _, row in hits.loc[touched].iterrows()]
    return out
