import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from seed_transfer.classification.linear import SweepResult, default_c_grid, linear_transfer, plain_sklearn_sweep
from seed_transfer.classification.linear.logistic import _candidates, _determined, _extrapolate, _pick_best


@pytest.fixture(autouse=True)
def single_blas_thread():
    """These problems are tiny: threaded BLAS only adds spin-waiting (seconds on a busy machine)."""
    with threadpool_limits(1):
        yield


def clusters(n, centres, noise, rng):
    y = rng.integers(0, len(centres), n)
    return centres[y] + noise * rng.normal(size=(n, centres.shape[1])), y


def single_label_problem(noise, seed=0, n=(300, 120, 120), classes=4, dim=12):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.normal(size=(classes, dim))
    return [a for split in (clusters(k, centres, noise, rng) for k in n) for a in split]


def multi_label_problem(seed=0, n=(240, 100, 100), labels=3, dim=10):
    """Each label is a noisy linear function of the features; ~10% of targets are difficult (-1)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(dim, labels))
    out = []
    for k in n:
        x = rng.normal(size=(k, dim))
        y = ((x @ directions + 1.5 * rng.normal(size=(k, labels))) > 0.5).astype(int)
        y[rng.random(y.shape) < 0.1] = -1
        out += [x, y]
    return out


def test_default_grid_is_ericsson_wd_range():
    grid = default_c_grid()
    assert grid.shape == (45,)
    np.testing.assert_allclose(grid, 1.0 / np.logspace(-6, 5, 45))
    assert grid[0] == pytest.approx(1e6) and grid[-1] == pytest.approx(1e-5)


def test_separable_clusters_pick_sensible_c_and_reach_100():
    data = single_label_problem(noise=0.3)
    grid = default_c_grid(12)
    res = linear_transfer(*data, "top1", grid, n_jobs=1)
    assert isinstance(res, SweepResult) and res.metric == "top1"
    assert [c for c, _ in res.val_curve] == pytest.approx(list(grid))  # grid order, every C
    assert res.best_c > grid.min()  # not the strongest regularisation
    assert dict(res.val_curve)[grid.min()] < 50  # C = 1e-5 underfits: the sweep matters
    assert res.test_score == pytest.approx(100.0)
    assert set(res.seconds) == {"sweep", "refit"}


@pytest.mark.parametrize("metric", ["top1", "mean_per_class"])
def test_fast_sweep_matches_plain_sweep_multinomial(metric):
    data = single_label_problem(noise=2.0, seed=1)  # overlapping clusters: a non-flat validation curve
    grid = default_c_grid(15)
    plain = plain_sklearn_sweep(*data, metric, grid)
    fast = linear_transfer(*data, metric, grid, n_jobs=2)
    assert 50 < plain.test_score < 100
    assert fast.best_c == plain.best_c
    assert fast.test_score == pytest.approx(plain.test_score, abs=0.1)
    # where regularisation is not negligible the two sweeps agree point by point
    moderate = [i for i, c in enumerate(grid) if c <= 10]
    assert [fast.val_curve[i][1] for i in moderate] == pytest.approx([plain.val_curve[i][1] for i in moderate], abs=1.0)
    assert fast.iterations["sweep"] < plain.iterations["sweep"]


def test_fast_sweep_matches_plain_sweep_multi_label():
    data = multi_label_problem()
    grid = default_c_grid(12)
    plain = plain_sklearn_sweep(*data, "map11", grid)
    fast = linear_transfer(*data, "map11", grid, n_jobs=2)
    assert 50 < plain.test_score < 100
    assert fast.best_c == plain.best_c
    assert fast.test_score == pytest.approx(plain.test_score, abs=0.1)


def test_result_does_not_depend_on_workers_or_grid_order():
    data = single_label_problem(noise=2.0, seed=2)
    grid = default_c_grid(10)
    one = linear_transfer(*data, "top1", grid, n_jobs=1)
    two = linear_transfer(*data, "top1", grid[::-1], n_jobs=2)
    assert one.best_c == two.best_c and one.test_score == two.test_score
    assert one.val_curve == two.val_curve[::-1]


def test_standardize_makes_the_sweep_scale_invariant():
    data = single_label_problem(noise=2.0, seed=3)
    scale = np.logspace(-2, 2, data[0].shape[1])  # per-feature units
    scaled = [a * scale if i % 2 == 0 else a for i, a in enumerate(data)]
    grid = default_c_grid(8)
    ref = linear_transfer(*data, "top1", grid, n_jobs=1, standardize=True)
    res = linear_transfer(*scaled, "top1", grid, n_jobs=1, standardize=True)
    assert res.best_c == ref.best_c and res.test_score == pytest.approx(ref.test_score, abs=1.0)


def test_ties_go_to_the_largest_c():
    grid = np.array([10.0, 1.0, 0.1, 100.0])
    assert _pick_best(grid, [80, 90, 90, 70]) == 1
    assert _pick_best(grid, [90, 90, 90, 90]) == 3


def sol(value):
    return np.array([[value]]), np.array([-value])


def test_extrapolation_continues_the_path_in_log_c():
    path = [(1.0, sol(0.0)), (np.e, sol(1.0)), (np.e**2, sol(4.0))]  # the path is t^2 in t = log C
    coef, intercept = _extrapolate(path, np.e**3)
    assert coef.item() == pytest.approx(9.0) and intercept.item() == pytest.approx(-9.0)
    coef, _ = _extrapolate(path[1:], np.e**3)  # two points: the line through them, 4 + (4 - 1)
    assert coef.item() == pytest.approx(7.0)
    coef, _ = _extrapolate(path[-1:], np.e**3)  # one point: itself
    assert coef.item() == pytest.approx(4.0)
    coef, _ = _extrapolate(path, np.e**5)  # a step longer than the last one: no extrapolation
    assert coef.item() == pytest.approx(4.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(metric="top5"), "unknown metric"),
        (dict(c_grid=[]), "c_grid is empty"),
        (dict(c_grid=[1.0, -1.0]), "C > 0"),
        (dict(train_y=np.zeros(5, dtype=int)), "train_x has 300 rows but train_y has 5"),
        (dict(val_x=np.zeros((120, 3))), "feature dims differ"),
        (dict(metric="map11"), r"needs train_y of shape \(N, C\)"),
        (dict(path_chunks=0), "path_chunks"),
    ],
)
def test_bad_inputs_raise(change, message):
    names = ["train_x", "train_y", "val_x", "val_y", "test_x", "test_y"]
    kwargs = dict(zip(names, single_label_problem(noise=1.0)), metric="top1", c_grid=[1.0], n_jobs=1)
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        linear_transfer(**kwargs)


def test_multi_label_class_without_positives_is_named():
    x_tr, y_tr, x_va, y_va, x_te, y_te = multi_label_problem()
    y_tr[:, 2] = np.where(y_tr[:, 2] == 1, 0, y_tr[:, 2])
    with pytest.raises(ValueError, match="class 2"):
        linear_transfer(x_tr, y_tr, x_va, y_va, x_te, y_te, "map11", [1.0], n_jobs=1)


@pytest.fixture(scope="module")
def digits_resnet_features():
    """Real features: scikit-learn's digits (8x8, upsampled to 32 px) through a fixed random-init
    ResNet-18, split as the digits dataset is (70/30 stratified, then 20% of train as val).
    512-d, correlated and unscaled, as real pooled features are: lbfgs on them takes a
    different number of iterations with 1 or 2 BLAS threads."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.resnet18()
    net.fc = torch.nn.Identity()
    images = torch.tensor(x / 16, dtype=torch.float32).reshape(-1, 1, 8, 8).repeat(1, 3, 1, 1)
    with torch.inference_mode():
        features = net.eval()(torch.nn.functional.interpolate(images, size=32)).numpy()
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    val, train = train[:250], train[250:]
    return [features[train], y[train], features[val], y[val], features[test], y[test]]


def test_sweep_on_real_features_does_not_depend_on_workers_or_blas_threads(digits_resnet_features):
    """Every fit runs with threads_per_fit threads, in a worker (n_jobs=2) or in this process
    (n_jobs=1), whatever the caller's BLAS setting: the same iterates, hence the same lbfgs
    iteration counts, validation curve, C and test score. Unpinned, one process with 2 BLAS
    threads takes other iteration counts than 1 thread on these features."""
    grid = default_c_grid(6, -3, 2)
    results = {}
    for blas in (1, 2):
        for n_jobs in (1, 2):
            with threadpool_limits(blas):
                results[blas, n_jobs] = linear_transfer(
                    *digits_resnet_features, "top1", grid, n_jobs=n_jobs, path_chunks=2, max_iter=300
                )
    reference = results[1, 1]
    assert 80 < reference.test_score < 100 and any(reference.determined)
    for setting, result in results.items():
        assert (result.best_c, result.test_score) == (reference.best_c, reference.test_score), setting
        assert result.val_curve == reference.val_curve and result.iterations == reference.iterations, setting
        assert result.converged == reference.converged and result.selection == reference.selection, setting


def test_c_is_chosen_among_determined_fits_and_the_result_says_so():
    data = single_label_problem(noise=0.3)  # separable: at large C the weights are not determined
    grid = default_c_grid(12)
    res = linear_transfer(*data, "top1", grid, n_jobs=1, max_iter=50)
    assert len(res.converged) == len(res.determined) == 12
    assert all(c for c, d in zip(res.converged, res.determined) if d)  # determined implies converged
    chosen = [c for c, _ in res.val_curve].index(res.best_c)
    assert res.determined[chosen] and not all(res.determined)
    assert dict(res.val_curve)[res.best_c] == max(s for (_, s), d in zip(res.val_curve, res.determined) if d)
    assert res.selection.startswith(f"the {sum(res.determined)} of 12 C values whose fits converged")
    assert "leaves the weights undetermined" in res.selection


def test_determined_is_the_strong_convexity_bound():
    coef = np.ones((2, 50))  # ||W|| = 10, sqrt(W.size) = 10
    # bound = 10 * tol * C * n must be <= 1% of ||W|| = 0.1
    assert _determined(coef, c=1.0, n=1000, tol=1e-5)  # bound 0.1
    assert not _determined(coef, c=1.01, n=1000, tol=1e-5)


def test_candidates_fall_back_when_nothing_is_determined(caplog):
    eligible, text = _candidates([True, True, False], [True, False, False], max_iter=100)
    assert eligible == [True, False, False]
    assert text == (
        "the 1 of 3 C values whose fits converged to determined weights; left out: 1 stopped at "
        "max_iter=100 or in a failed line search (raise max_iter), 1 at C so large that the stopping "
        "rule leaves the weights undetermined"
    )
    with caplog.at_level("WARNING", logger="seed_transfer.classification.linear.logistic"):
        assert _candidates([True, False], [False, False], 100)[0] == [True, False]
        assert _candidates([False, False], [False, False], 100) == (
            [True, True],
            "all 2 C values (none converged); left out: 2 stopped at max_iter=100 or in a failed line "
            "search (raise max_iter)",
        )
    assert len(caplog.records) == 2 and "depends on floating-point order" in caplog.text


def test_map11_fits_difficult_rows_as_negatives_and_the_other_rule_leaves_them_out():
    x_tr, y_tr, x_va, y_va, x_te, y_te = multi_label_problem()
    grid = default_c_grid(6)
    ericsson = linear_transfer(x_tr, y_tr, x_va, y_va, x_te, y_te, "map11", grid, n_jobs=1)
    as_zero = [np.where(y == -1, 0, y) for y in (y_tr, y_va, y_te)]
    same = linear_transfer(x_tr, as_zero[0], x_va, as_zero[1], x_te, as_zero[2], "map11", grid, n_jobs=1)
    assert (ericsson.val_curve, ericsson.test_score) == (same.val_curve, same.test_score)  # -1 is a negative
    ignored = linear_transfer(x_tr, y_tr, x_va, y_va, x_te, y_te, "map11_ignore_difficult", grid, n_jobs=1)
    assert ignored.val_curve != ericsson.val_curve and ignored.metric == "map11_ignore_difficult"
