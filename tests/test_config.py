from pathlib import Path

import pytest

from pipeline import config
from pipeline.config import ConfigError, TrainConfig


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_layers_merge_in_order_and_overrides_win(tmp_path):
    base = write(tmp_path / "base.yaml", "training:\n  epochs: 2\n  seed: 1\n")
    exp = write(tmp_path / "exp.yaml", "training:\n  epochs: 3\n")
    cfg = config.load(TrainConfig, [base, exp], ["training.seed=7", "model.encoder=minilm"])
    assert (cfg.training.epochs, cfg.training.seed, cfg.model.encoder) == (3.0, 7, "minilm")
    assert cfg.training.learning_rate == 2e-5  # untouched default


def test_unknown_key_names_file_and_key(tmp_path):
    bad = write(tmp_path / "bad.yaml", "training:\n  epocs: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key in .*bad\.yaml: training\.epocs"):
        config.load(TrainConfig, [bad])


def test_wrong_type_says_expected_and_found(tmp_path):
    bad = write(tmp_path / "bad.yaml", "training:\n  batch_size: sixteen\n")
    with pytest.raises(ConfigError, match=r"expected int, found str in .*bad\.yaml: training\.batch_size"):
        config.load(TrainConfig, [bad])


def test_bool_is_not_an_int(tmp_path):
    bad = write(tmp_path / "bad.yaml", "training:\n  seed: true\n")
    with pytest.raises(ConfigError, match=r"expected int, found bool"):
        config.load(TrainConfig, [bad])


def test_literal_choices_are_enforced():
    with pytest.raises(ConfigError, match=r"expected 'tfidf' or 'frozen' or 'setfit' or 'finetune', found 'svm' "
                                          r"in --set model.family=svm: model.family"):
        config.load(TrainConfig, [], ["model.family=svm"])


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match=r"is not KEY=VALUE"):
        config.load(TrainConfig, [], ["training.epochs"])


def test_section_must_be_a_mapping(tmp_path):
    bad = write(tmp_path / "bad.yaml", "training: 3\n")
    with pytest.raises(ConfigError, match=r"expected mapping, found int in .*bad\.yaml: training"):
        config.load(TrainConfig, [bad])


def test_shipped_configs_load_for_every_task_and_family():
    for task in ("stance", "sentiment"):
        for family in ("tfidf", "frozen", "setfit", "finetune"):
            cfg = config.train_config(task, family)
            assert (cfg.task, cfg.model.family) == (task, family)


def test_experiment_names_its_own_task_and_family(tmp_path):
    exp = write(tmp_path / "exp.yaml", "task: sentiment\nmodel:\n  family: frozen\n  encoder: minilm\n")
    cfg = config.train_config(experiment=exp)
    assert (cfg.task, cfg.model.family, cfg.model.encoder) == ("sentiment", "frozen", "minilm")


def test_unknown_family_lists_choices():
    with pytest.raises(ConfigError, match=r"no model config 'svm' .* choose one of finetune, frozen, setfit, tfidf"):
        config.train_config("stance", "svm")


def test_every_experiment_file_loads():
    files = sorted(Path("experiments").glob("*.yaml"))
    assert files, "experiments/ ships override files"
    for file in files:
        assert file.read_text().startswith("# question:"), f"{file} states the question it asks"
        config.train_config(experiment=file)
