"""Training, search and export on small subsets with the real libraries.

CK+ crops are read from shared/data at test time (never committed); tests needing them
skip with the reason when the file is absent. Conversions to .tflite need the export
interpreter with litert-torch (build/export-venv or FER_EXPORT_PYTHON) and are marked
slow.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (torch)")
pytest.importorskip("sklearn", reason="training needs the [train] extra (scikit-learn)")

from fer_ros.core.cnn_spec import load_cnn_spec  # noqa: E402
from fer_ros.core.model_card import load_model_card  # noqa: E402
from fer_ros.training import graph  # noqa: E402
from fer_ros.training.augment import AugmentSettings, augment_crops  # noqa: E402
from fer_ros.training.data import (  # noqa: E402
    DEFAULT_CLASSES,
    FaceDataset,
    load_dataset,
)
from fer_ros.training.fit import TrainSettings, train_model  # noqa: E402
from fer_ros.training.loihi import loihi_report  # noqa: E402
from fer_ros.training.model import LOIHI_BASELINE, ArchConfig, FerCnn  # noqa: E402
from fer_ros.training.onnx_export import build_onnx  # noqa: E402
from fer_ros.training.pipeline import group_subset, run  # noqa: E402
from fer_ros.training.splits import assert_group_disjoint, group_kfold, holdout_split  # noqa: E402

torch.set_num_threads(1)
# tiny subsets leave some class with fewer groups than folds; sklearn warns, we know
pytestmark = pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")
TINY = ArchConfig(blocks=((4,), (8,)), dense=(16,), dropout=0.1)


def _synthetic(n_groups: int = 30, per_group: int = 3, seed: int = 0) -> FaceDataset:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_groups) % 7, per_group)
    groups = np.repeat(np.arange(n_groups), per_group)
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    return FaceDataset(images, labels.astype(np.int64), DEFAULT_CLASSES, groups)


# --- splits -----------------------------------------------------------------------------


def test_no_group_straddles_any_split(ck_plus_path: Path) -> None:
    ds = load_dataset(ck_plus_path)
    tr, te = holdout_split(ds, 0.2, seed=0)
    assert not set(ds.groups[tr]) & set(ds.groups[te])
    assert len(tr) + len(te) == len(ds)
    dev = ds.subset(tr)
    for a, b in group_kfold(dev.labels, dev.groups, 5, seed=0):
        assert not set(dev.groups[a]) & set(dev.groups[b])
    # every class is represented in the held-out split
    assert set(ds.labels[te]) == set(range(len(ds.classes)))


def test_leak_detector_fires() -> None:
    groups = np.array([0, 0, 1, 1])
    with pytest.raises(AssertionError):
        assert_group_disjoint(groups, np.array([0, 2]), np.array([1, 3]))


def test_group_subset_keeps_whole_groups() -> None:
    ds = _synthetic()
    sub = group_subset(ds, 20, seed=1)
    for g in np.unique(sub.groups):
        assert (sub.groups == g).sum() == (ds.groups == g).sum()


# --- data formats -----------------------------------------------------------------------


def test_fer2013_csv_maps_classes_by_name(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for emotion, usage in [
            (0, "Training"),
            (3, "Training"),
            (6, "Training"),
            (5, "PrivateTest"),
            (4, "PublicTest"),
        ]:
            w.writerow([emotion, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
    ds = load_dataset(path, classes=DEFAULT_CLASSES)
    assert ds.classes == DEFAULT_CLASSES
    # angry->anger, happy, neutral, surprise, sad->sadness kept (neutral is the 8th class)
    labels = [ds.classes[i] for i in ds.labels]
    assert labels == ["anger", "happy", "neutral", "surprise", "sadness"]
    _, te = holdout_split(ds, 0.2, 0)
    assert list(ds.usage[te]) == ["PrivateTest"]


def test_folder_tree_with_group_regex(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("Happy", "angry"):
        (tmp_path / cls).mkdir()
        for seq in range(2):
            for frame in range(3):
                img = rng.integers(0, 256, (64, 60), dtype=np.uint8)
                cv2.imwrite(str(tmp_path / cls / f"S01{seq}_{cls}_{frame:03d}.png"), img)
    ds = load_dataset(tmp_path, group_regex=r"^(S\d+_\w+?)_\d+$")
    assert ds.images.shape == (12, 48, 48)
    assert ds.classes == ("happy", "anger")  # project order, aliases resolved
    assert len(np.unique(ds.groups)) == 4


# --- augmentation and training ----------------------------------------------------------


def test_augmentation_is_seeded_and_keeps_shape() -> None:
    crops = _synthetic().images[:8]
    a = augment_crops(crops, np.random.default_rng(3))
    b = augment_crops(crops, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == crops.shape
    assert np.array_equal(a, b) and not np.array_equal(a, crops)


@pytest.mark.parametrize("regularised", [False, True])
def test_training_is_reproducible(regularised: bool) -> None:
    ds = _synthetic(n_groups=14)
    s = TrainSettings(epochs=1, progress=False, seed=5)
    if regularised:  # EMA, mixup, random erasing and batchnorm recalibration
        s = replace(
            s,
            epochs=2,
            ema_decay=0.9,
            mixup_alpha=0.2,
            recalibrate_bn=True,
            augmentation=AugmentSettings(erase_probability=0.5),
        )
    m1, m2 = train_model(ds, TINY, s), train_model(ds, TINY, s)
    for p1, p2 in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(p1, p2)


# --- folding, ONNX and the Loihi spec ---------------------------------------------------


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_folded_graph_and_onnx_match_pytorch(head: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = FerCnn(ArchConfig(blocks=((4, 4), (8,)), dense=(16,), head=head), 7)
    for m in model.modules():  # non-trivial batchnorm statistics to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = np.random.default_rng(0).random((3, 1, 48, 48), np.float32)
    ref = model(torch.from_numpy(x)).detach().numpy()
    layers = graph.fold(model)
    assert np.allclose(graph.forward_numpy(layers, x), ref, atol=1e-5)
    proto = build_onnx(layers, (1, 48, 48), "t")
    ops = {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"}
    assert {n.op_type for n in proto.graph.node} <= ops
    out = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    assert np.allclose(out, ref, atol=1e-5)


def test_loihi_rules() -> None:
    layers = graph.fold(FerCnn(LOIHI_BASELINE, 7))
    rep = loihi_report(LOIHI_BASELINE, layers)
    assert rep["violations"] == [] and rep["neurons_total"] == 24 * 24 * 8 + 12 * 12 * 16 + 71
    assert rep["cores_per_layer"][:2] == [5, 3]
    assert all(lay.bias is None for lay in layers if lay.kind == "conv")
    pooled = ArchConfig(blocks=((8,),), dense=(16,))
    assert loihi_report(pooled, graph.fold(FerCnn(pooled, 7)))["violations"]
    with pytest.raises(ValueError):
        graph.to_cnn_spec(graph.fold(FerCnn(pooled, 7)), (1, 48, 48))


# --- end to end -------------------------------------------------------------------------


def _tflite_available() -> bool:
    from fer_ros.training.tflite_export import export_python

    try:
        export_python()
    except RuntimeError:
        return False
    return True


def _run_tiny(ck: Path, tmp: Path, exports: list[str], cfg: ArchConfig, pre: str) -> dict:
    s = TrainSettings(preprocessing=pre, epochs=2, progress=False)
    card = run(ck, cfg, s, "tiny", tmp, exports, folds=2, subset=150, workdir=tmp / "wd")
    return json.loads((tmp / "tiny.json").read_text()) | {"_card": card}


def test_pipeline_onnx_openvino_and_spec(ck_plus_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    cfg = ArchConfig(
        blocks=((4,), (8,)), dense=(16,), downsample="stride", batchnorm=False, conv_bias=False
    )
    data = _run_tiny(
        ck_plus_path, tmp_path, ["onnx", "cnn_spec", "openvino_fp16", "openvino_int8"], cfg, "canny"
    )
    card = load_model_card(tmp_path / "tiny.json")
    assert card.preprocessing == "canny"
    for export in ("onnx", "cnn_spec", "openvino_fp16", "openvino_int8"):
        assert card.file(export).is_file()
    agree = data["export_agreement"]
    assert agree["onnx"]["argmax_agreement"] == 1.0
    assert agree["cnn_spec"]["argmax_agreement"] == 1.0
    assert agree["openvino_fp16"]["argmax_agreement"] >= 0.95
    assert len(data["cross_validation"]["fold_accuracy"]) == 2
    assert set(data["held_out"]["per_class_recall"]) == set(card.classes)
    assert data["loihi"]["violations"] == []
    assert cv2.imread(str(tmp_path / data["confusion_png"])) is not None
    assert (tmp_path / "tiny.md").read_text().startswith("# Model card")
    spec = load_cnn_spec(str(card.file("cnn_spec")))
    assert [s.kind for s in spec.layers] == ["conv", "conv", "dense", "dense"]


@pytest.mark.slow
def test_pipeline_tflite_exports(ck_plus_path: Path, tmp_path: Path) -> None:
    if not _tflite_available():
        pytest.skip("no litert-torch interpreter (build/export-venv or FER_EXPORT_PYTHON)")
    data = _run_tiny(ck_plus_path, tmp_path, ["tflite_fp32", "tflite_int8"], TINY, "grayscale")
    notes = data["export_notes"]
    assert notes["tflite_int8"]["input_dtype"] == "int8"
    assert notes["tflite_int8"]["output_dtype"] == "int8"
    edgetpu_ops = {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "RESHAPE",
        "QUANTIZE",
        "DEQUANTIZE",
    }
    assert set(notes["tflite_int8"]["ops"]) <= edgetpu_ops
    assert data["export_agreement"]["tflite_fp32"]["argmax_agreement"] == 1.0


@pytest.mark.parametrize("target", ["cpu", "loihi"])
def test_tiny_search(ck_plus_path: Path, tmp_path: Path, target: str) -> None:
    from fer_ros.training.search import main

    main(
        [
            "--data",
            str(ck_plus_path),
            "--target",
            target,
            "--trials",
            "2",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--subset",
            "120",
            "--quiet",
            "--out",
            str(tmp_path),
            "--max-latency-ms",
            "50",
        ]
    )
    with open(tmp_path / target / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert 1 <= sum(r["feasible"] == "True" for r in rows) <= 2  # 2 trials, maybe one repeat
    assert len({r["config"] for r in rows}) == len(rows)
    best = json.loads((tmp_path / target / "best_arch.json").read_text())
    cfg = ArchConfig.from_json(best["config"])
    assert (cfg.downsample == "stride") == (target == "loihi")
