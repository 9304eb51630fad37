import json
from pathlib import Path

from pipeline import attribution

# Set from the measurement reported in docs/attribution.md; a drop below it is a regression.
MIN_ACCURACY = 0.72


def test_quote_speaker_short_names_and_role_nouns_resolve():
    sentences = [
        "Brightwell Labs met officials from the Ministry of Finance on Tuesday.",
        "Marisol Adebayo-Lind, Brightwell's head of policy, said a deal was within reach.",
        "“We are certain it meets every requirement,” Adebayo-Lind said.",
        "The ministry doubts the safeguards will work, according to Deputy Minister Tobias Renfrew.",
        "The company rejected the report as baseless.",
        "“This is not over.",
        "We will keep pressing,” said Renfrew.",
    ]
    holders = attribution.attribute(sentences, [False, True, True, True, True, True, True])
    assert holders[1] == "Marisol Adebayo-Lind"
    assert holders[2] == "Marisol Adebayo-Lind"
    assert holders[3] == "Tobias Renfrew"
    assert holders[4] == "Brightwell Labs"
    assert holders[5] == holders[6] == "Tobias Renfrew"
    assert holders[0] == ""


def test_normalize_makes_one_key_per_stakeholder():
    assert attribution.normalize("the Treasury Department's") == attribution.normalize("Treasury Department")
    assert attribution.normalize("Dr. Ilse Varga") == "ilse varga"


def test_accuracy_on_the_shipped_attribution_set():
    rows = [json.loads(line) for line in Path("data/attribution/attribution_set.jsonl").read_text().splitlines()]
    assert sum(len(r["holders"]) for r in rows) >= 150
    result = attribution.evaluate(rows)
    assert result["accuracy"] >= MIN_ACCURACY, result
