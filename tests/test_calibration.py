import numpy as np
import pytest
from scipy.special import softmax

from pipeline import calibration
from pipeline.metrics import expected_calibration_error


def _under_confident(true_temperature: float, n: int = 20_000, seed: int = 0):
    """Labels drawn from softmax(z); the model shows softmax(z * T), i.e. logits divided by 1 / T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, 5))
    y = np.array([rng.choice(5, p=p) for p in softmax(logits, axis=1)])
    return softmax(logits * true_temperature, axis=1), y


def test_fit_recovers_a_known_temperature_and_lowers_ece():
    shown, y = _under_confident(0.4)
    temperature = calibration.fit_temperature(shown, y)
    assert temperature == pytest.approx(0.4, rel=0.05)
    before = expected_calibration_error(shown, y)
    after = expected_calibration_error(calibration.scale(shown, temperature), y)
    assert before > 0.1 and after < 0.02
    assert (calibration.scale(shown, temperature).argmax(1) == shown.argmax(1)).all(), "labels never change"


def test_an_over_confident_model_gets_a_temperature_above_one():
    shown, y = _under_confident(2.5, n=5_000)
    assert calibration.fit_temperature(shown, y) == pytest.approx(2.5, rel=0.1)


def test_scaling_keeps_impossible_labels_at_zero_and_rows_summing_to_one():
    probabilities = np.array([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5]])
    scaled = calibration.scale(probabilities, 0.5)
    assert scaled[0, 2] == 0.0
    np.testing.assert_allclose(scaled.sum(1), 1.0)
    np.testing.assert_allclose(scaled[0, :2], [0.36 / 0.52, 0.16 / 0.52])  # p**2, renormalised
    np.testing.assert_array_equal(calibration.scale(probabilities, 1.0), probabilities)
    # A true label with probability 0 costs the same at every temperature: the fit ignores it.
    assert np.isfinite(calibration.fit_temperature(probabilities, np.array([2, 2])))


def test_threshold_is_the_lowest_confidence_that_meets_the_target():
    # Confidences 0.9 ... 0.4 with correctness: top 4 right, then wrong, right, wrong.
    confidence = np.array([0.9, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 1, 0, 1, 0], dtype=bool)
    probabilities = np.stack([confidence, (1 - confidence) / 2, (1 - confidence) / 2], axis=1)
    y = np.where(correct, 0, 1)
    chosen = calibration.choose_threshold(probabilities, y, 0.8)
    # Accuracy at >= 0.5 is 5/6 (meets 0.8); at >= 0.4 it is 5/7 (does not).
    assert chosen == calibration.Threshold(0.5 - calibration.TIE_TOLERANCE / 2, 6 / 7, 5 / 6, True)
    assert calibration.choose_threshold(probabilities, y, 1.0).threshold == pytest.approx(0.7, abs=1e-5)
    kept = confidence >= chosen.threshold
    assert correct[kept].mean() >= 0.8


def test_tied_confidences_go_in_or_out_together():
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.7, 0.3], [0.6, 0.4]])
    y = np.array([0, 0, 1, 0])
    # Taking one of the two 0.7 rows would reach 1.0; both give 2/3: the threshold stays at 0.9.
    assert calibration.choose_threshold(probabilities, y, 0.9).threshold == pytest.approx(0.9, abs=1e-5)
    # Confidences apart by float noise are one tie too, and the threshold leaves a gap on both sides.
    noisy = probabilities + np.array([[0, 0], [0, 0], [3e-7, -3e-7], [0, 0]])
    assert calibration.choose_threshold(noisy, y, 0.9).threshold == pytest.approx(0.9, abs=1e-5)
    chosen = calibration.choose_threshold(noisy, np.array([0, 0, 1, 1]), 0.6)
    assert chosen.coverage == 0.75 and 0.7 - chosen.threshold >= calibration.TIE_TOLERANCE / 2 - 1e-12


def test_an_unreachable_target_flags_everything_and_says_so():
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]])
    chosen = calibration.choose_threshold(probabilities, np.array([1, 1]), 0.95)
    assert (chosen.threshold, chosen.coverage, chosen.reached) == (1.0, 0.0, False)
    assert np.isnan(chosen.covered_accuracy)


def test_reliability_diagram_is_written(tmp_path):
    shown, y = _under_confident(0.4, n=2_000)
    path = calibration.plot_reliability({"val": (shown, calibration.scale(shown, 0.4), y)},
                                        tmp_path / "reliability.png", "test", 0.4)
    assert path.stat().st_size > 10_000
