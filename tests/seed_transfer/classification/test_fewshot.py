"""Prototypical few-shot episodes: sampling, the classifier, the interval, and the protocol run end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
from tiny import TINY

from seed_core.config import ConfigError, load_config
from seed_transfer.classification.fewshot import (
    confidence_interval,
    paired_difference,
    prototype_accuracy,
    prototype_predictions,
    sample_episodes,
)
from seed_transfer.classification.schema import TransferClsConfig
from seed_transfer.classification.transfer import run_cls_transfer

DIGITS_DEMO = Path(__file__).parents[3] / "configs" / "transfer" / "cls" / "digits_demo.yaml"
# 8 classes with 10..24 images each, shuffled
TARGETS = np.random.default_rng(0).permutation(np.repeat(np.arange(8), np.arange(10, 26, 2)))


def one_hot(targets: np.ndarray, dim: int = 16) -> np.ndarray:
    return np.eye(dim)[targets]


def test_episodes_are_a_function_of_the_arguments():
    first = sample_episodes(TARGETS, n_way=5, k_shot=5, n_query=4, n_episodes=50, seed=0)
    again = sample_episodes(TARGETS.copy(), n_way=5, k_shot=5, n_query=4, n_episodes=50, seed=0)
    other = sample_episodes(TARGETS, n_way=5, k_shot=5, n_query=4, n_episodes=50, seed=1)
    for name in ("classes", "support", "query"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.support, other.support)
    assert first.classes.shape == (50, 5) and first.support.shape == (50, 5, 5) and first.query.shape == (50, 5, 4)
    assert (len(first), first.n_way, first.k_shot, first.n_query) == (50, 5, 5, 4)


@pytest.mark.parametrize("n_way, k_shot, n_query", [(5, 1, 15), (5, 5, 4), (8, 2, 8), (2, 9, 1)])
def test_every_episode_has_distinct_classes_and_disjoint_support_and_query(n_way, k_shot, n_query):
    episodes = sample_episodes(TARGETS, n_way, k_shot, n_query, n_episodes=40, seed=3)
    for classes, support, query in zip(episodes.classes, episodes.support, episodes.query):
        assert len(set(classes.tolist())) == n_way
        assert not set(support.ravel().tolist()) & set(query.ravel().tolist())
        assert len(set(support.ravel().tolist()) | set(query.ravel().tolist())) == n_way * (k_shot + n_query)
        assert (TARGETS[support] == classes[:, None]).all() and (TARGETS[query] == classes[:, None]).all()


def test_only_classes_with_enough_images_take_part():
    episodes = sample_episodes(TARGETS, n_way=3, k_shot=5, n_query=15, n_episodes=200, seed=0)
    counts = np.bincount(TARGETS)
    assert set(episodes.classes.ravel().tolist()) == set(np.flatnonzero(counts >= 20).tolist())  # 3 of 8 classes
    message = (
        r"5-way 5-shot episodes with 15 queries need 5 classes with at least 20 images; "
        r"3 of 8 classes have that many \(the largest: \[24, 22, 20, 18, 16\] images\); lower n_query"
    )
    with pytest.raises(ValueError, match=message):
        sample_episodes(TARGETS, n_way=5, k_shot=5, n_query=15, n_episodes=10)


def test_perfect_features_score_100_and_constant_features_score_chance():
    episodes = sample_episodes(TARGETS, n_way=5, k_shot=1, n_query=9, n_episodes=30, seed=0)
    perfect = prototype_accuracy(one_hot(TARGETS), TARGETS, episodes)
    assert perfect.mean == 100.0 and perfect.ci95 == 0.0 and len(perfect.per_episode) == 30
    constant = prototype_accuracy(np.ones((len(TARGETS), 4)), TARGETS, episodes)
    assert np.allclose(constant.per_episode, 100.0 / 5)  # every query goes to the first prototype
    noisy = one_hot(TARGETS) + np.random.default_rng(0).normal(0, 0.4, (len(TARGETS), 16))
    assert 20 < prototype_accuracy(noisy, TARGETS, episodes).mean < 100


def test_nearest_prototype_is_the_mean_of_the_support():
    support = np.array([[[0.0, 0.0], [2.0, 0.0]], [[10.0, 0.0], [10.0, 4.0]]])  # prototypes (1, 0) and (10, 2)
    query = np.array([[5.4, 0.0], [5.6, 1.0], [-3.0, 0.0]])
    assert prototype_predictions(support, query).tolist() == [0, 1, 0]


def test_normalize_makes_the_score_invariant_to_feature_norms():
    episodes = sample_episodes(TARGETS, n_way=5, k_shot=3, n_query=5, n_episodes=20, seed=0)
    features = np.random.default_rng(1).normal(size=(len(TARGETS), 8)) + one_hot(TARGETS, 8)
    scales = np.random.default_rng(2).uniform(0.1, 10, (len(TARGETS), 1))
    plain = prototype_accuracy(features, TARGETS, episodes, normalize=True)
    scaled = prototype_accuracy(features * scales, TARGETS, episodes, normalize=True)
    assert np.array_equal(plain.per_episode, scaled.per_episode)


def test_the_interval_is_1_96_std_over_sqrt_n():
    values = np.array([60.0, 80.0, 100.0, 40.0])
    assert confidence_interval(values) == pytest.approx(1.96 * np.std(values) / 2)
    assert confidence_interval(values) == pytest.approx(1.96 * np.sqrt(500.0) / 2)  # ddof = 0
    mean, ci = paired_difference([70.0, 80.0, 90.0], [60.0, 80.0, 80.0])
    assert mean == pytest.approx(20 / 3) and ci == pytest.approx(1.96 * np.std([10.0, 0.0, 10.0]) / np.sqrt(3))
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference([1.0, 2.0], [1.0])


def test_episodes_must_match_the_targets():
    episodes = sample_episodes(TARGETS, n_way=5, k_shot=1, n_query=2, n_episodes=5)
    with pytest.raises(ValueError, match="other targets"):
        prototype_accuracy(one_hot(TARGETS), np.roll(TARGETS, 1), episodes)


def digits_config(tmp_path, *overrides):
    return load_config(
        TransferClsConfig,
        DIGITS_DEMO,
        [
            "model.weights=random",
            f"model.arch={TINY}",
            "features.resize=16",
            "features.crop=16",
            f"features.cache_dir={tmp_path}/cache",
            "linear.num_c=2",
            "linear.wd_min_exp=0",
            "linear.wd_max_exp=1",
            "linear.n_jobs=1",
            f"output_dir={tmp_path}/out",
            "fewshot.enabled=true",
            "fewshot.episodes=40",
            *overrides,
        ],
    )


def test_run_cls_transfer_reports_fewshot_on_digits(tmp_path):
    result = run_cls_transfer(digits_config(tmp_path, "fewshot.shots=[1, 5]"))
    blob = json.loads(open(result["path"]).read())
    assert set(blob) >= {"linear", "knn", "fewshot"} and 0 <= blob["linear"]["score"] <= 100
    assert set(blob["fewshot"]) == {"1shot", "5shot"}
    for k in (1, 5):
        shot = blob["fewshot"][f"{k}shot"]
        assert (shot["episodes"], shot["n_way"], shot["k_shot"], shot["n_query"]) == (40, 5, k, 15)
        assert len(shot["per_episode"]) == 40 and shot["score"] == pytest.approx(np.mean(shot["per_episode"]))
        assert shot["ci95"] == pytest.approx(confidence_interval(np.array(shot["per_episode"])))
        assert 20 < shot["score"] <= 100 and shot["split"] == "all"  # above chance on digits, even random features
    assert blob["fewshot"]["5shot"]["score"] > blob["fewshot"]["1shot"]["score"]
    # A second model on the same dataset gets the same episodes, so its accuracies pair with these.
    other = run_cls_transfer(
        digits_config(
            tmp_path,
            "model.seed=1",
            "model.name=other",
            "fewshot.shots=[5]",
            "linear.enabled=false",
            "knn.enabled=false",
        )
    )
    assert "linear" not in other and len(other["fewshot"]["5shot"]["per_episode"]) == 40
    paired_difference(other["fewshot"]["5shot"]["per_episode"], blob["fewshot"]["5shot"]["per_episode"])


def test_too_few_images_per_class_stop_before_the_sweep(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"fewshot on digits \(test images\): 5-way 5-shot episodes with 60 "
        r"queries need 5 classes with at least 65 images; 0 of 10",
    ):
        run_cls_transfer(digits_config(tmp_path, "fewshot.split=test", "fewshot.n_query=60", "fewshot.shots=[5]"))


def test_fewshot_config_is_checked():
    random_model = ["model.weights=random", "model.arch=resnet18"]
    with pytest.raises(ConfigError, match="fewshot.split='val'; valid values: all, trainval, test"):
        load_config(TransferClsConfig, None, [*random_model, "fewshot.split=val"])
    with pytest.raises(ConfigError, match=r"fewshot.shots must be at least 1, got \[0\]"):
        load_config(TransferClsConfig, None, [*random_model, "fewshot.shots=[0]"])
    assert load_config(TransferClsConfig, None, random_model).fewshot.enabled is False
