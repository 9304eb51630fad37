import shutil
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
    with pytest.raises(ConfigError, match=r"expected 'tfidf' or 'frozen' or 'setfit' or 'finetune' or 'multitask', "
                                          r"found 'svm' in --set model.family=svm: model.family"):
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


def test_multitask_learns_both_tasks_and_refuses_a_single_one(tmp_path):
    assert config.train_config(None, "multitask").task == "both"
    assert config.train_config("both", "multitask").model.multitask_sentiment_weight == 1.0
    with pytest.raises(ConfigError, match=r"task 'stance' does not go with model family 'multitask' \(--task\): "
                                          r"the multitask family learns both tasks"):
        config.train_config("stance", "multitask")
    with pytest.raises(ConfigError, match=r"task 'both' does not go with model family 'finetune' \(--set task\)"):
        config.train_config(None, "finetune", overrides=["task=both"])
    exp = write(tmp_path / "exp.yaml", "task: sentiment\nmodel:\n  family: multitask\n")
    with pytest.raises(ConfigError, match=r"task 'sentiment' does not go with model family 'multitask' "
                                          r"\(.*exp\.yaml: task\)"):
        config.train_config(experiment=exp)


@pytest.mark.parametrize(("source", "message"), [
    ("--set", r"expected a value in \(0, 10\], found -1 in --set model\.multitask_sentiment_weight=-1: "
              r"model\.multitask_sentiment_weight$"),
    ("file", r"expected a value in \(0, 10\], found 0 in .*weights\.yaml: model\.multitask_sentiment_weight$"),
])
def test_multitask_task_weight_out_of_range_names_file_and_key(tmp_path, source, message):
    with pytest.raises(ConfigError, match=message):
        if source == "--set":
            config.train_config(None, "multitask", overrides=["model.multitask_sentiment_weight=-1"])
        else:
            exp = write(tmp_path / "weights.yaml", "model:\n  family: multitask\n  multitask_sentiment_weight: 0\n")
            config.train_config(experiment=exp)


def test_score_models_setting_is_checked():
    assert config.load(config.ScoreConfig, ["configs/score.yaml"]).models == "auto"
    with pytest.raises(ConfigError, match=r"expected 'auto' or 'single' or 'multitask', found 'both' in --set "
                                          r"models=both: "
                                          r"models$"):
        config.load(config.ScoreConfig, ["configs/score.yaml"], ["models=both"])


def test_experiment_names_its_own_task_and_family(tmp_path):
    exp = write(tmp_path / "exp.yaml", "task: sentiment\nmodel:\n  family: frozen\n  encoder: minilm\n")
    cfg = config.train_config(experiment=exp)
    assert (cfg.task, cfg.model.family, cfg.model.encoder) == ("sentiment", "frozen", "minilm")


def test_unknown_family_lists_choices():
    with pytest.raises(ConfigError, match=r"no model config 'svm' .* choose one of finetune, frozen, multitask, "
                                          r"setfit, tfidf"):
        config.train_config("stance", "svm")


def test_every_experiment_file_loads():
    files = sorted(Path("experiments").glob("*.yaml"))
    assert files, "experiments/ ships override files"
    for file in files:
        assert file.read_text().startswith("# question:"), f"{file} states the question it asks"
        config.train_config(experiment=file)


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize(("cls", "file"), [(TrainConfig, "configs/base.yaml"),
                                           (config.ScoreConfig, "configs/score.yaml"),
                                           (config.DataConfig, "configs/data.yaml"),
                                           (config.QuantizeConfig, "configs/quantize.yaml"),
                                           (config.LabelSimConfig, "configs/label-sim.yaml")])
def test_documented_yaml_and_dataclass_defaults_agree(cls, file):
    assert config.load(cls, [file]) == cls()


def test_base_yaml_documents_every_training_key():
    documented = set(_leaves(config.read_yaml("configs/base.yaml")))
    assert documented == set(_leaves(config.to_dict(TrainConfig())))


def test_task_and_family_files_restate_no_base_value():
    base = _leaves(config.read_yaml("configs/base.yaml"))
    for file in sorted(Path("configs/task").glob("*.yaml")) + sorted(Path("configs/model").glob("*.yaml")):
        for key, value in _leaves(config.read_yaml(file)).items():
            if key in ("task", "model.family"):  # what the file is for
                continue
            assert value != base.get(key), f"{file} restates base.yaml's {key}: {value!r}; delete the line"


def test_a_base_edit_reaches_every_family(tmp_path):
    import shutil

    configs = shutil.copytree("configs", tmp_path / "configs")
    base = configs / "base.yaml"
    base.write_text(base.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 7.0e-5"))
    for family in ("tfidf", "frozen", "setfit", "finetune"):
        assert config.train_config("stance", family, config_dir=configs).training.learning_rate == 7e-5, family


def test_set_wins_last_for_task_and_family(tmp_path):
    cfg = config.train_config("stance", "tfidf", overrides=["task=sentiment", "model.family=finetune"])
    assert (cfg.task, cfg.model.family) == ("sentiment", "finetune")
    exp = write(tmp_path / "exp.yaml", "task: sentiment\nmodel:\n  family: frozen\n")
    cfg = config.train_config(experiment=exp, overrides=["model.family=setfit"])
    assert (cfg.task, cfg.model.family) == ("sentiment", "setfit")
    cfg = config.train_config("stance", experiment=exp)
    assert (cfg.task, cfg.model.family) == ("stance", "frozen"), "an explicit task still beats the experiment's"


@pytest.mark.parametrize(("override", "message"), [
    ("uncertain_threshold=7", r"expected a value in \[0, 1\], found 7 in --set uncertain_threshold=7: "
                              r"uncertain_threshold"),
    ("batch_size=-3", r"expected a value > 0, found -3 in --set batch_size=-3: batch_size"),
    ("chunk_articles=0", r"expected a value > 0, found 0 in --set chunk_articles=0: chunk_articles"),
    ("max_article_bytes=0", r"expected a value > 0, found 0 in .*: max_article_bytes"),
])
def test_score_values_out_of_range_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(config.ScoreConfig, ["configs/score.yaml"], [override])


def test_out_of_range_value_in_a_file_names_the_file(tmp_path):
    bad = write(tmp_path / "score.yaml", "uncertain_threshold: 7\n")
    with pytest.raises(ConfigError, match=r"expected a value in \[0, 1\], found 7 in .*score\.yaml: "
                                          r"uncertain_threshold$"):
        config.load(config.ScoreConfig, [bad])


@pytest.mark.parametrize(("override", "message"), [
    ("training.learning_rate=0", r"expected a value > 0, found 0 in .*: training\.learning_rate"),
    ("training.learning_rate=-1e-5", r"expected a value > 0, found -1e-5 in .*: training\.learning_rate"),
    ("training.warmup_ratio=1.5", r"expected a value in \[0, 1\], found 1\.5 in .*: training\.warmup_ratio"),
    ("training.layerwise_lr_decay=0", r"expected a value in \(0, 1\], found 0 in .*: training\.layerwise_lr_decay"),
    ("training.batch_size=0", r"expected a value > 0, found 0 in .*: training\.batch_size"),
    ("training.epochs=0", r"expected a value > 0, found 0 in .*: training\.epochs"),
    ("training.max_train_rows=-1", r"expected a value >= 0, found -1 in .*: training\.max_train_rows"),
    ("model.max_length=0", r"expected a value > 0, found 0 in .*: model\.max_length"),
    ("data.near_duplicate_jaccard=2", r"expected a value in \[0, 1\], found 2 in .*: data\.near_duplicate_jaccard"),
])
def test_training_values_out_of_range_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        config.train_config("stance", "finetune", overrides=[override])


@pytest.mark.parametrize(("key", "line", "message"), [
    ("target_accuracy", "  target_accuracy: 1.5",
     r"expected a value in \(0, 1\], found 1\.5 in .*base\.yaml: calibration\.target_accuracy$"),
    ("target_accuracy", "  target_accuracy: 0",
     r"expected a value in \(0, 1\], found 0 in .*base\.yaml: calibration\.target_accuracy$"),
    ("temperature_scaling", "  temperature_scaling: sometimes",
     r"expected bool, found str in .*base\.yaml: calibration\.temperature_scaling$"),
    ("temperature_scaling", "  temperature: 0.5",
     r"unknown key in .*base\.yaml: calibration\.temperature \(allowed: target_accuracy, temperature_scaling\)"),
])
def test_bad_calibration_values_name_the_file_and_key(tmp_path, key, line, message):
    configs = tmp_path / "configs"
    shutil.copytree("configs", configs)
    base = configs / "base.yaml"
    lines = [line if text.startswith(f"  {key}:") else text for text in base.read_text().splitlines()]
    base.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=message):
        config.train_config("stance", "tfidf", config_dir=configs)


def test_score_threshold_null_means_the_models_own():
    assert config.load(config.ScoreConfig, ["configs/score.yaml"]).uncertain_threshold is None
    explicit = config.load(config.ScoreConfig, ["configs/score.yaml"], ["uncertain_threshold=0.7"])
    assert explicit.uncertain_threshold == 0.7


def test_in_range_edges_load():
    cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], ["uncertain_threshold=0", "batch_size=1"])
    assert (cfg.uncertain_threshold, cfg.batch_size) == (0.0, 1)
    assert config.load(config.ScoreConfig, [], ["uncertain_threshold=1"]).uncertain_threshold == 1.0


def test_relative_paths_are_taken_from_the_repo_root(tmp_path, monkeypatch):
    from pipeline import paths

    monkeypatch.chdir(tmp_path)
    cfg = config.train_config("stance", "tfidf", config_dir=paths.CONFIGS,
                              overrides=["training.output_dir=outputs/elsewhere"])
    assert Path(cfg.data.corpus_dir) == paths.REPO_ROOT / "data" / "corpus"
    assert Path(cfg.training.output_dir) == paths.REPO_ROOT / "outputs" / "elsewhere"
    assert (Path(cfg.data.corpus_dir) / "train.jsonl").is_file()
    assert config.train_config("stance", "tfidf").training.output_dir == str(paths.OUTPUTS / "train")


def test_exponent_without_a_dot_is_a_float():
    assert config.train_config("stance", "finetune", overrides=["training.learning_rate=3e-5"]).training.learning_rate \
        == 3e-5
    with pytest.raises(ConfigError, match=r"expected float, found str in .*: training\.learning_rate"):
        config.train_config("stance", "finetune", overrides=["training.learning_rate=fast"])


def test_command_line_options_are_checked_like_config_keys():
    cfg = config.from_options(config.LabelExportConfig, n=5, strategy="entropy", skip_labeled=["data/user/*.jsonl"])
    assert (cfg.n, cfg.strategy) == (5, "entropy")
    assert cfg.skip_labeled == (str(Path(cfg.out).parents[2] / "data" / "user" / "*.jsonl"),)
    with pytest.raises(ConfigError, match=r"expected 'margin' or 'entropy' or 'random', found 'bald' in option "
                                          r"--strategy: strategy"):
        config.from_options(config.LabelExportConfig, strategy="bald")
    with pytest.raises(ConfigError, match=r"expected a value in \(0, 1\), found 1 in .*: data\.user_holdout_share"):
        config.train_config("stance", "tfidf", overrides=["data.user_holdout_share=1"])
