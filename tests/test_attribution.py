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


def test_sentence_openers_and_time_phrases_are_never_stakeholders():
    sentences = [
        "During third-quarter results, Corvane Foods boasted of record margins on frozen meals.",
        "Separately, the Harwick Water Board warned that reservoir levels were falling.",
        "Writing for the panel, Judge Anselm Treadway said the contract was void.",
        "Following weeks of talks, Dunmore Transit rejected the union's offer.",
        "Several lawmakers doubt the plan will pass, according to Senator Ilka Borrow.",
    ]
    holders = attribution.attribute(sentences, [True] * len(sentences))
    assert holders == ["Corvane Foods", "Harwick Water Board", "Anselm Treadway", "Dunmore Transit",
                       "Ilka Borrow"]


def test_a_quote_goes_to_one_party_not_to_a_conjunction():
    sentences = [
        "The Competition Office and Plumline traded accusations over the merger on Monday.",
        "“We have answered every question put to us,” Plumline said.",
        "“We will not be rushed,” it said, adding that the review would take months.",
        "The Department for Roads and Transit said the bridge would reopen in May.",
    ]
    holders = attribution.attribute(sentences, [True] * len(sentences))
    assert holders[0] == "Competition Office"
    assert holders[1] == "Plumline"
    assert holders[2] == "Plumline"
    assert holders[3] == "Department for Roads and Transit", "one name with 'and' inside stays one party"


def test_role_nouns_resolve_to_the_last_party_of_their_kind():
    sentences = [
        "ARDEN (Harbour Herald) - Velmora's transport ministry reopened the rail tender on Friday.",
        "Ostrava Rail, the losing bidder, said the delay would cost it millions.",
        "The ministry rejected that account, saying the tender had been flawed from the start.",
        "The company said it would appeal, its chief executive told the Harbour Herald.",
        "Kelso Freight said it had not bid; the firm said it doubted the tender would ever close.",
    ]
    holders = attribution.attribute(sentences, [True] * len(sentences))
    assert attribution.normalize(holders[2]) == "velmora transport ministry"
    assert holders[3] == "Ostrava Rail", "the company is the last company named, not the ministry or the outlet"
    assert holders[4] == "Kelso Freight"
