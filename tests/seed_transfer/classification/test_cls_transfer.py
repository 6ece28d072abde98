import json

import numpy as np
import pytest
from PIL import Image
from tiny import TINY, make_image_folder

from seed_core.config import load_config
from seed_transfer.classification.report import gather, markdown_table, plot_val_curves, write_csv
from seed_transfer.classification.schema import TransferClsConfig
from seed_transfer.classification.transfer import carve_val, run_cls_transfer


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    make_image_folder(root / "train", classes=3, per_class=10, size=12, seed=0)
    make_image_folder(root / "test", classes=3, per_class=4, size=12, seed=1)
    return root


def config(folder, tmp_path, *overrides):
    return load_config(
        TransferClsConfig,
        None,
        [
            "model.weights=random",
            f"model.arch={TINY}",
            "data.name=imagefolder",
            f"data.root={folder}",
            "features.resize=16",
            "features.crop=16",
            "features.num_workers=0",
            f"features.cache_dir={tmp_path}/cache",
            "linear.num_c=5",
            "linear.n_jobs=1",
            "knn.k=5",
            f"output_dir={tmp_path}/out",
            *overrides,
        ],
    )


def test_carved_validation_is_fixed_and_disjoint():
    train, val = carve_val(100, 0.2, seed=0)
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    assert np.array_equal(carve_val(100, 0.2, seed=0)[1], val)
    assert not np.array_equal(carve_val(100, 0.2, seed=1)[1], val)


def test_run_writes_json_and_reuses_cached_features(folder, tmp_path):
    first = run_cls_transfer(config(folder, tmp_path))
    blob = json.loads(open(first["path"]).read())
    assert blob["model"] == f"random-{TINY}" and blob["dataset"] == "imagefolder" and blob["metric"] == "top1"
    assert blob["sizes"] == {"train": 24, "val": 6, "test": 12}  # 20% of the 30 train images carved out
    assert 0 <= blob["linear"]["score"] <= 100 and len(blob["linear"]["val_curve"]) == 5
    assert blob["linear"]["best_c"] in [c for c, _ in blob["linear"]["val_curve"]]
    assert 0 <= blob["knn"]["score"] <= 100 and blob["features_cached"] is False
    second = run_cls_transfer(config(folder, tmp_path))
    assert second["features_cached"] is True and second["linear"] == first["linear"]


def test_an_image_replaced_under_its_name_is_extracted_again(tmp_path):
    root = tmp_path / "data"
    make_image_folder(root / "train", classes=3, per_class=10, size=12, seed=0)
    make_image_folder(root / "test", classes=3, per_class=4, size=12, seed=1)
    assert run_cls_transfer(config(root, tmp_path))["features_cached"] is False
    assert run_cls_transfer(config(root, tmp_path))["features_cached"] is True
    replaced = root / "test" / "class0" / "0.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(replaced)  # other pixels (and bytes) under the same name
    again = run_cls_transfer(config(root, tmp_path))
    assert again["features_cached"] is False  # the test split's features are extracted again
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3  # train, then test twice: the old file is not reused


def test_a_fully_cached_rerun_still_records_the_checkpoints_arch(folder, tmp_path):
    from distill.export import export_student
    from distill.models import build_backbone

    export_student(build_backbone(TINY)[0], TINY, tmp_path / "student.pth", meta={})
    overrides = [f"model.weights={tmp_path / 'student.pth'}", "model.arch=null"]
    first = run_cls_transfer(config(folder, tmp_path, *overrides))
    second = run_cls_transfer(config(folder, tmp_path, *overrides))
    assert second["features_cached"] and first["arch"] == second["arch"] == TINY


def test_report_table_csv_and_plot(folder, tmp_path):
    run_cls_transfer(config(folder, tmp_path, "model.name=a"))
    run_cls_transfer(config(folder, tmp_path, "model.name=b", "model.seed=1"))
    results = gather([tmp_path / "out"])
    assert {r["model"] for r in results} == {"a", "b"}
    text = markdown_table(results)
    assert text.splitlines()[0] == "| linear | imagefolder (top1) |" and len(text.splitlines()) == 4
    write_csv(results, tmp_path / "t.csv")
    assert open(tmp_path / "t.csv").read().startswith("model,dataset,metric,linear,best_c,knn")
    plot_val_curves(results, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_linear_standardize_reaches_the_sweep(folder, tmp_path, monkeypatch):
    from seed_transfer.classification import transfer

    seen = []

    def recording(*args, **kwargs):
        seen.append(kwargs["standardize"])
        return real(*args, **kwargs)

    real = transfer.linear_transfer
    monkeypatch.setattr(transfer, "linear_transfer", recording)
    off = run_cls_transfer(config(folder, tmp_path))
    on = run_cls_transfer(config(folder, tmp_path, "linear.standardize=true", f"output_dir={tmp_path}/std"))
    assert seen == [False, True]  # off by default: the protocol fits raw features
    assert off["config"]["linear"]["standardize"] is False and on["config"]["linear"]["standardize"] is True


def test_tiny_features_without_a_determined_fit_name_the_fix(folder, tmp_path, monkeypatch, caplog):
    from seed_transfer.classification import transfer

    real = transfer.extract_features

    def tiny(*args, **kwargs):  # a backbone whose pooled features are ~1e-10, like a random MobileNetV3's
        out = real(*args, **kwargs)
        return transfer.Features(out.features * 1e-10, out.targets)

    monkeypatch.setattr(transfer, "extract_features", tiny)
    with caplog.at_level("WARNING", logger="seed_transfer.classification.transfer"):
        raw = run_cls_transfer(config(folder, tmp_path, "features.cache_dir=null"))
    assert not any(raw["linear"]["determined"]) and "linear.standardize=true" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="seed_transfer.classification.transfer"):
        std = run_cls_transfer(
            config(folder, tmp_path, "features.cache_dir=null", "linear.standardize=true", f"output_dir={tmp_path}/s")
        )
    assert any(std["linear"]["determined"]) and "linear.standardize" not in caplog.text
