import pandas as pd

from pipeline import borders


def test_enforcement_with_reason_needs_both_the_action_and_the_wrong():
    text = pd.Series([
        "The agency fined Dorra Mills 40,000 dollars for failing to fix a broken guard rail.",
        "Drivers sued the operator on Friday, alleging it skipped brake inspections.",
        "The agency fined Dorra Mills 40,000 dollars on Tuesday, according to a notice.",
        "A hearing in the case is set for June 2.",
        "The union says the operator skipped brake inspections."])
    assert borders.enforcement_with_reason(text).tolist() == [True, True, False, False, False]


def test_candidates_name_the_rules_each_sentence_touches():
    frame = pd.DataFrame({"text": [
        "The company said the lawsuit was without merit and called it a baseless smear.",
        "KELBY, May 4 (Northline) - Ostra Bank (OSTR.L) said profit rose 4%.",
        "Brokers expect the takeover to clear the review.",
        "The plant employs 1,200 people."], "stance": ["dismissive", "neutral", "confident", "neutral"]})
    found = borders.candidates(frame)
    assert found["rules"].tolist() == [["B1", "B2", "S1"], ["B7"], ["B4"]]
