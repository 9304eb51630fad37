"""Data stage: the labeled corpus, its label maps, and ``validate`` (schema, duplicates, leakage, realism).

The corpus is sentence-level JSON Lines, one file per split (``train.jsonl``, ``val.jsonl``,
``test.jsonl``); each row is one sentence of a whole article, in article order.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import hashlib
import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import borders
from pipeline.config import SENTIMENT_LABELS, STANCE_LABELS, TASK_LABELS, DataConfig
from pipeline.errors import PipelineError

REQUIRED_FIELDS: dict[str, type] = {
    "article_id": str,
    "sentence_index": int,
    "text": str,
    "stance": str,
    "sentiment": str,
    "stakeholder": str,
    "phenomena": list,
    "domain": str,
    "register": str,
    "writer": str,
    "outlet": str,
    "title": str,
}
PHENOMENA = (
    "negative_forecast", "denial_repeats_accusation", "bare_denial", "denial_accuses_back",
    "authority_fact_accusation", "quote_fragment", "neutral_scheduling", "implicit_stance",
    "negated_cue", "third_party_report", "reporter_hedging", "sarcasm_rhetorical", "multi_stakeholder",
)
MIN_PER_PHENOMENON = 30
# A stance label's own word: it must not give the label away.
OWN_WORD = {
    "confident": re.compile(r"\bconfiden", re.I),
    "wary": re.compile(r"\bwar(?:y|ily|iness|ier)\b", re.I),
    "accusatory": re.compile(r"\baccus", re.I),
    "dismissive": re.compile(r"\bdismiss", re.I),
}
FUTURE = re.compile(r"\b(?:will|would|won[’']t|wouldn[’']t)\b|\w[’']ll\b", re.I)
QUOTE = re.compile("[\"“”]")
CURLY = re.compile("[“”]")

REALISM_LIMITS = {
    "median_words": (">=", 22),
    "share_30_words": (">=", 0.25),
    "share_quoted": (">=", 0.25),
    "curly_share_of_quoted": ("between", (0.35, 0.65)),
    "future_share_neutral": (">=", 0.20),
    "future_share_wary": (">=", 0.20),
    "future_share_confident": ("<=", 0.45),
    **{f"own_word_share_{label}": ("<=", 0.15) for label in OWN_WORD},
    **{f"own_word_in_other_labels_{label}": (">=", 1) for label in OWN_WORD},
    # Border realism (docs/labels.md B1, B2, B6): real news asks questions, gives reasons for fines and
    # suits, and uses the standard legal denials; a corpus without them teaches a model to miss them.
    "question_share": (">=", 0.01),
    "enforcement_with_reason_neutral_share": ("<=", 0.10),
    "legal_denial_sentences": (">=", 20),
}
LEGAL_DENIAL = re.compile(r"vigorously (?:defend|contest|fight)|without merit|meritless|groundless", re.I)
SUITE_FIELDS: dict[str, type] = {"id": str, "rule": str, "text": str, "stance": str, "sentiment": str,
                                 "stakeholder": str, "pair": str, "writer": str}


class DataError(PipelineError, ValueError):
    """A data file is unreadable or malformed; the message names the file and the line."""


def label_maps(task: str) -> tuple[dict[str, int], dict[int, str]]:
    """The fixed label order for a task. Saved with every model as ``id2label``."""
    labels = TASK_LABELS[task]
    return {name: i for i, name in enumerate(labels)}, dict(enumerate(labels))


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    rows, errors = [], []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                errors.append(f"{path}:{line_no}: not valid JSON ({err.msg}); fix or remove the line")
                continue
            if not isinstance(row, dict):
                errors.append(f"{path}:{line_no}: expected a JSON object, found {type(row).__name__}")
                continue
            row["_file"], row["_line"] = str(path), line_no
            rows.append(row)
    return rows, errors


def read_table(path: str | Path) -> pd.DataFrame:
    """Reads a CSV, JSONL or Parquet file into a DataFrame, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=False)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: could not be read as {suffix[1:]}: {err}") from err
    raise DataError(f"{path}: unsupported format {suffix!r}; use .csv, .jsonl or .parquet")


def load_split(corpus_dir: str | Path, split: str) -> pd.DataFrame:
    path = Path(corpus_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: split file not found; run `make data` to check the corpus")
    rows, errors = read_jsonl(path)
    if errors:
        raise DataError("\n".join(errors))
    frame = pd.DataFrame(rows).drop(columns=["_file", "_line"])
    return frame


def data_version(corpus_dir: str | Path, splits: tuple[str, ...] = ("train", "val", "test")) -> str:
    """A short content hash of the corpus files: changes whenever any labeled row changes."""
    digest = hashlib.sha256()
    for split in splits:
        digest.update((Path(corpus_dir) / f"{split}.jsonl").read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- a user's own labels

USER_FIELDS: dict[str, type] = {"article_id": str, "sentence_index": int, "text": str, "stance": str,
                                "sentiment": str}


@dataclasses.dataclass
class UserData:
    """A user's labels (``data.user_files``), split by article into training rows and a hold-out."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    files: list[Path]
    version: str  # content hash of the files, logged with every run that trains on them


def matching_files(patterns: tuple[str, ...], key: str, remedy: str) -> list[Path]:
    """The files the globs of config ``key`` match, each once; a glob matching nothing is an error that
    says ``remedy``."""
    files: list[Path] = []
    for pattern in patterns:
        found = sorted(Path(p) for p in glob.glob(pattern))
        if not found:
            raise DataError(f"{key}: {pattern!r} matches no file; {remedy} or leave {key} empty")
        files += [f for f in found if f not in files]
    return files


def load_unlabeled(patterns: tuple[str, ...], held_out: set[str]) -> list[str]:
    """The sentences of ``data.unlabeled_files`` (one per line, blank lines skipped), refusing any that is also
    a validation or test sentence (``held_out``): a teacher's label on it would leak into training."""
    sentences: list[str] = []
    for path in matching_files(patterns, "data.unlabeled_files", "fix the glob"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            text = line.strip()
            if text in held_out:
                raise DataError(f"{path}:{number}: this sentence is in the validation or test split; "
                                "remove it from the unlabeled file")
            if text:
                sentences.append(text)
    return sentences


def field_errors(row: dict[str, Any], fields: dict[str, type], where: str) -> list[str]:
    """Missing fields and fields of the wrong type (a bool is not an int here); ``where`` names file and line."""
    errors = []
    for field, kind in fields.items():
        if field not in row:
            errors.append(f"{where}: missing field {field!r}")
        elif not isinstance(row[field], kind) or (kind is int and isinstance(row[field], bool)):
            errors.append(f"{where}: field {field!r} expected {kind.__name__}, found {type(row[field]).__name__}")
    return errors


def user_row_errors(row: dict[str, Any], where: str) -> list[str]:
    """Problems of one user label row; ``where`` names its file and line (or task)."""
    errors = field_errors(row, USER_FIELDS, where)
    if errors:
        return errors
    for task, labels in TASK_LABELS.items():
        if row[task] not in labels:
            errors.append(f"{where}: {task} {row[task]!r} is not one of {', '.join(labels)}")
    return errors


def in_user_holdout(article_id: str, share: float) -> bool:
    """Whether an article is held out: by a hash of its id, so that labeling more never moves an article."""
    digest = hashlib.sha256(article_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def load_user(cfg: DataConfig) -> UserData | None:
    """The labels of ``cfg.user_files`` split by article; None when none are configured."""
    if not cfg.user_files:
        return None
    files = matching_files(cfg.user_files, "data.user_files", "label some sentences first (docs/labeling.md)")
    rows, errors, seen = [], [], {}
    for path in files:
        file_rows, file_errors = read_jsonl(path)
        errors += file_errors
        for row in file_rows:
            where = f"{row['_file']}:{row['_line']}"
            row_errors = user_row_errors(row, where)
            errors += row_errors
            if row_errors:
                continue
            key = (row["article_id"], row["sentence_index"])
            if key in seen:
                errors.append(f"{where}: article {key[0]} sentence {key[1]} is also labeled at {seen[key]}; "
                              "keep one of the two")
            seen[key] = where
            rows.append(row)
    if errors:
        raise DataError("\n".join(errors))
    if not rows:
        raise DataError(f"data.user_files: {', '.join(map(str, files))} hold no labels")
    frame = pd.DataFrame(rows).drop(columns=["_file", "_line"])
    articles = sorted(frame["article_id"].unique())
    held = {a for a in articles if in_user_holdout(a, cfg.user_holdout_share)}
    if not held and len(articles) > 1:  # few articles: hold out the one the hash ranks first
        held = {min(articles, key=lambda a: hashlib.sha256(a.encode("utf-8")).digest())}
    if len(held) == len(articles) and len(articles) > 1:
        held.discard(max(articles, key=lambda a: hashlib.sha256(a.encode("utf-8")).digest()))
    is_held = frame["article_id"].isin(held)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return UserData(frame[~is_held].reset_index(drop=True), frame[is_held].reset_index(drop=True), files,
                    digest.hexdigest()[:12])


def oversample(frame: pd.DataFrame, weight: float, seed: int) -> pd.DataFrame:
    """Each row ``weight`` times on average: whole copies, then a seeded sample for the fraction."""
    copies = [frame] * int(weight)
    fraction = weight - int(weight)
    if fraction > 0 and len(frame):
        copies.append(frame.sample(n=round(fraction * len(frame)), random_state=seed))
    return pd.concat(copies, ignore_index=True) if copies else frame.iloc[:0]


# ---------------------------------------------------------------- validation


@dataclasses.dataclass
class DataResult:
    ok: bool
    errors: list[str]
    counts: dict[str, int]
    figures: dict[str, float]
    table: pd.DataFrame
    data_version: str


def _row_errors(row: dict[str, Any]) -> list[str]:
    where = f"{row['_file']}:{row['_line']}"
    errors = field_errors(row, REQUIRED_FIELDS, where)
    if errors:
        return errors
    if not row["text"].strip():
        errors.append(f"{where}: empty or whitespace-only text")
    if row["stance"] not in STANCE_LABELS:
        errors.append(f"{where}: stance {row['stance']!r} not one of {', '.join(STANCE_LABELS)}")
    if row["sentiment"] not in SENTIMENT_LABELS:
        errors.append(f"{where}: sentiment {row['sentiment']!r} not one of {', '.join(SENTIMENT_LABELS)}")
    if row["stance"] == "neutral" and row["stakeholder"].strip():
        errors.append(f"{where}: neutral sentence has a stakeholder; clear it or change the stance")
    if row["stance"] in STANCE_LABELS and row["stance"] != "neutral" and not row["stakeholder"].strip():
        errors.append(f"{where}: {row['stance']} sentence has no stakeholder; name who holds the stance")
    unknown = sorted(set(row["phenomena"]) - set(PHENOMENA))
    if unknown:
        errors.append(f"{where}: unknown phenomena {unknown}; allowed: {', '.join(PHENOMENA)}")
    rules = row.get("rules", [])
    if not isinstance(rules, list) or set(rules) - set(borders.RULES):
        errors.append(f"{where}: field 'rules' must be a list of {', '.join(borders.RULES)}, found {rules!r}")
    return errors


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def shingles(text: str) -> set[str]:
    """Word 3-grams of a sentence: what the near-duplicate checks compare (Jaccard)."""
    return _shingles(text)


def near_duplicates(texts: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """Pairs with word-3-gram Jaccard >= threshold, exact (prefix filtering, not sampling)."""
    sets = [_shingles(t) for t in texts]
    frequency = collections.Counter(s for shingles in sets for s in shingles)
    index: dict[str, list[int]] = collections.defaultdict(list)
    pairs = []
    for i, shingles in enumerate(sets):
        if not shingles:
            continue
        ordered = sorted(shingles, key=lambda s: (frequency[s], s))
        # Two sets with Jaccard >= t share at least one of the rarest |A| - ceil(t|A|) + 1 items of A.
        prefix = ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]
        candidates = {j for s in prefix for j in index[s]}
        for j in candidates:
            shared = len(shingles & sets[j])
            jaccard = shared / (len(shingles) + len(sets[j]) - shared)
            if jaccard >= threshold:
                pairs.append((j, i, jaccard))
        for s in prefix:
            index[s].append(i)
    return pairs


def realism_figures(frame: pd.DataFrame) -> dict[str, float]:
    words = frame["text"].str.split().str.len()
    quoted = frame["text"].str.contains(QUOTE)
    curly = frame.loc[quoted, "text"].str.contains(CURLY)
    future = frame["text"].str.contains(FUTURE)
    figures: dict[str, float] = {
        "median_words": float(statistics.median(words)),
        "share_30_words": float((words >= 30).mean()),
        "share_quoted": float(quoted.mean()),
        "curly_share_of_quoted": float(curly.mean()) if len(curly) else 0.0,
    }
    for label in ("neutral", "wary", "confident"):
        figures[f"future_share_{label}"] = float(future[frame["stance"] == label].mean())
    for label, pattern in OWN_WORD.items():
        has_word = frame["text"].str.contains(pattern)
        figures[f"own_word_share_{label}"] = float(has_word[frame["stance"] == label].mean())
        figures[f"own_word_in_other_labels_{label}"] = float(has_word[frame["stance"] != label].sum())
    figures["question_share"] = float(frame["text"].str.rstrip(" ”\"'’").str.endswith("?").mean())
    with_reason = borders.enforcement_with_reason(frame["text"])
    figures["enforcement_with_reason_neutral_share"] = (
        float((frame.loc[with_reason, "stance"] == "neutral").mean()) if with_reason.any() else 0.0)
    figures["legal_denial_sentences"] = float(frame["text"].str.contains(LEGAL_DENIAL).sum())
    return figures


def _within(op: str, value: float, bound) -> bool:
    if op == ">=":
        return value >= bound
    if op == "<=":
        return value <= bound
    return bound[0] <= value <= bound[1]


def _limit_failures(figures: dict[str, float]) -> list[str]:
    return [f"realism: {name} = {figures[name]:.3g}, required {op} {bound}"
            for name, (op, bound) in REALISM_LIMITS.items() if not _within(op, figures[name], bound)]


def _corpus_errors(frame: pd.DataFrame, cfg: DataConfig) -> list[str]:
    errors = []
    # Article leakage and writer/register separation between training and held-out splits.
    splits_per_article = frame.groupby("article_id")["split"].nunique()
    for article in splits_per_article[splits_per_article > 1].index:
        errors.append(f"leakage: article {article} appears in splits "
                      f"{sorted(frame.loc[frame.article_id == article, 'split'].unique())}")
    train = frame[frame.split == "train"]
    held_out = frame[frame.split != "train"]
    for column in ("writer", "register"):
        shared = sorted(set(train[column]) & set(held_out[column]))
        if shared:
            errors.append(f"leakage: {column}s {shared} write both training and held-out articles")
    # Article shape.
    sizes = frame.groupby("article_id").size()
    for article, size in sizes.items():
        if not 10 <= size <= 30:
            first = frame[frame.article_id == article].iloc[0]
            errors.append(f"{first._file}:{first._line}: article {article} has {size} sentences, needs 10-30")
    for article, group in frame.groupby("article_id"):
        if list(group.sentence_index) != list(range(len(group))):
            errors.append(f"{group.iloc[0]._file}:{group.iloc[0]._line}: article {article} "
                          "sentence_index is not 0..n-1 in order")
    # Balance.
    n_articles = frame.article_id.nunique()
    if n_articles < cfg.min_articles:
        errors.append(f"balance: {n_articles} articles, need at least {cfg.min_articles}")
    for label in STANCE_LABELS:
        count = int((frame.stance == label).sum())
        if count < cfg.min_sentences_per_stance:
            errors.append(f"balance: {count} {label} sentences, need at least {cfg.min_sentences_per_stance}")
    domain_share = frame.domain.value_counts(normalize=True)
    if len(domain_share) < cfg.min_domains:
        errors.append(f"balance: {len(domain_share)} domains, need at least {cfg.min_domains}")
    for domain, share in domain_share[domain_share > cfg.max_domain_share].items():
        errors.append(f"balance: domain {domain} holds {share:.1%} of sentences, limit {cfg.max_domain_share:.0%}")
    if frame.register.nunique() < cfg.min_registers:
        errors.append(f"balance: {frame.register.nunique()} registers, need at least {cfg.min_registers}")
    phenomena = collections.Counter(p for ps in frame.phenomena for p in ps)
    for name in PHENOMENA:
        if phenomena[name] < MIN_PER_PHENOMENON:
            errors.append(f"coverage: {phenomena[name]} sentences marked {name}, need {MIN_PER_PHENOMENON}")
    # Duplicates within and across splits.
    texts = frame.text.tolist()
    for i, j, jaccard in near_duplicates(texts, cfg.near_duplicate_jaccard):
        a, b = frame.iloc[i], frame.iloc[j]
        kind = "exact duplicate" if a.text.strip() == b.text.strip() else f"near duplicate (Jaccard {jaccard:.2f})"
        errors.append(f"{b._file}:{b._line}: {kind} of {a._file}:{a._line}; rewrite or remove one")
    return errors


def read_suite(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The boundary suite (``data/boundary/suite.jsonl``) and every problem found in it, by file and line."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(), [f"{path}: boundary suite not found (see docs/labels.md, border rules)"]
    rows, errors = read_jsonl(path)
    good = []
    for row in rows:
        where = f"{row['_file']}:{row['_line']}"
        problems = [f"{where}: missing field {f!r}" if f not in row else
                    f"{where}: field {f!r} expected {kind.__name__}, found {type(row[f]).__name__}"
                    for f, kind in SUITE_FIELDS.items() if not isinstance(row.get(f), kind)]
        if not problems:
            if row["rule"] not in borders.RULES:
                problems.append(f"{where}: rule {row['rule']!r} not one of {', '.join(borders.RULES)}")
            if row["stance"] not in STANCE_LABELS:
                problems.append(f"{where}: stance {row['stance']!r} not one of {', '.join(STANCE_LABELS)}")
            if row["sentiment"] not in SENTIMENT_LABELS:
                problems.append(f"{where}: sentiment {row['sentiment']!r} not one of {', '.join(SENTIMENT_LABELS)}")
        errors += problems
        if not problems:
            good.append(row)
    frame = pd.DataFrame(good, columns=[*SUITE_FIELDS, "_file", "_line"])
    for name, count in frame["id"].value_counts().items():
        if count > 1:
            errors.append(f"{path}: id {name!r} is used {count} times; ids must be unique")
    for pair, group in frame[frame["pair"] != ""].groupby("pair"):
        if len(group) != 2:
            errors.append(f"{path}: pair {pair!r} has {len(group)} rows, needs exactly 2")
        elif group.iloc[0][["stance", "sentiment"]].equals(group.iloc[1][["stance", "sentiment"]]):
            errors.append(f"{group.iloc[1]['_file']}:{group.iloc[1]['_line']}: pair {pair!r} has the same labels "
                          "on both sides; a minimal pair must cross the border")
    return frame, errors


def _suite_errors(cfg: DataConfig, corpus: pd.DataFrame) -> list[str]:
    suite, errors = read_suite(cfg.suite_file)
    if suite.empty:
        return errors
    per_rule = suite["rule"].value_counts()
    for rule in borders.RULES:
        if per_rule.get(rule, 0) < cfg.min_suite_per_rule:
            errors.append(f"suite: rule {rule} has {per_rule.get(rule, 0)} sentences, "
                          f"needs at least {cfg.min_suite_per_rule}")
    # The suite is never trained on: no suite sentence may (nearly) repeat a corpus sentence.
    texts = corpus["text"].tolist()
    for i, j, _ in near_duplicates([*texts, *suite["text"]], cfg.near_duplicate_jaccard):
        if (i < len(texts)) != (j < len(texts)):
            row = corpus.iloc[min(i, j)]
            test = suite.iloc[max(i, j) - len(texts)]
            errors.append(f"leakage: {test['_file']}:{test['_line']} (suite) nearly repeats "
                          f"{row['_file']}:{row['_line']}; rewrite the suite sentence")
    return errors


def stats_table(frame: pd.DataFrame) -> pd.DataFrame:
    table = pd.crosstab(frame.stance, frame.split, margins=True, margins_name="total")
    return table.reindex([*STANCE_LABELS, "total"])


def validate(cfg: DataConfig) -> DataResult:
    """Checks every split file; returns all problems at once rather than stopping at the first."""
    corpus_dir = Path(cfg.corpus_dir)
    rows, errors = [], []
    for split in cfg.splits:
        path = corpus_dir / f"{split}.jsonl"
        if not path.is_file():
            errors.append(f"{path}: split file not found")
            continue
        split_rows, split_errors = read_jsonl(path)
        errors += split_errors
        for row in split_rows:
            row_errors = _row_errors(row)
            errors += row_errors
            if not row_errors:
                row["split"] = split
                rows.append(row)
    if not rows:
        return DataResult(False, errors or ["no rows"], {}, {}, pd.DataFrame(), "")
    frame = pd.DataFrame(rows)
    errors += _corpus_errors(frame, cfg)
    if cfg.suite_file:
        errors += _suite_errors(cfg, frame)
    figures = realism_figures(frame)
    errors += _limit_failures(figures)
    counts = {
        "articles": int(frame.article_id.nunique()),
        "sentences": len(frame),
        "domains": int(frame.domain.nunique()),
        "registers": int(frame.register.nunique()),
        "writers": int(frame.writer.nunique()),
        **{f"articles_{s}": int(frame[frame.split == s].article_id.nunique()) for s in cfg.splits},
        **{f"sentences_{s}": int((frame.split == s).sum()) for s in cfg.splits},
    }
    version = data_version(corpus_dir, cfg.splits) if all(
        (corpus_dir / f"{s}.jsonl").is_file() for s in cfg.splits) else ""
    return DataResult(not errors, errors, counts, figures, stats_table(frame), version)


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join([str(frame.index.name or ""), *map(str, frame.columns)]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    body = ["| " + " | ".join([str(i), *(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row)]) + " |"
            for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)]
    return "\n".join([header, rule, *body])


def card_tables(cfg: DataConfig) -> str:
    """The data card's count tables (label x split, x domain, x register) and realism figures, as Markdown."""
    frame = pd.concat([load_split(cfg.corpus_dir, s).assign(split=s) for s in cfg.splits], ignore_index=True)
    order = list(STANCE_LABELS)
    parts = []
    for column in ("split", "domain", "register", "writer"):
        table = pd.crosstab(frame[column], frame.stance, margins=True, margins_name="total")[[*order, "total"]]
        table.insert(0, "articles", frame.groupby(column).article_id.nunique().reindex(table.index).fillna(
            frame.article_id.nunique()).astype(int))
        parts.append(f"#### stance x {column}\n\n{markdown_table(table)}")
    sentiment = pd.crosstab(frame.split, frame.sentiment, margins=True, margins_name="total")
    parts.append(f"#### sentiment x split\n\n{markdown_table(sentiment)}")
    phenomena = collections.Counter(p for ps in frame.phenomena for p in ps)
    parts.append("#### marked hard phenomena\n\n" + markdown_table(
        pd.DataFrame({"sentences": [phenomena[p] for p in PHENOMENA]}, index=pd.Index(PHENOMENA, name="phenomenon"))))
    figures = realism_figures(frame)
    parts.append("#### realism figures\n\n" + markdown_table(pd.DataFrame(
        {"value": [round(v, 3) for v in figures.values()],
         "required": [f"{op} {bound}" for op, bound in (REALISM_LIMITS[k] for k in figures)]},
        index=pd.Index(list(figures), name="figure"))))
    return "\n\n".join(parts)
