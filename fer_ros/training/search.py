"""Hardware-aware architecture search over VGG-style CNNs with Optuna.

Each trial proposes an architecture, checks it against the target's constraints by
exporting it and running it in the target's runtime (or, for Loihi, by counting neurons
and cores), and only then trains it with group-aware k-fold CV on the development split
(the held-out test groups are never seen). The objective is mean CV accuracy.

Example (a tiny CI-sized search)::

    python -m fer_ros.training.search --data ck_plus_48_dev.npz --target coral \\
        --trials 2 --folds 2 --epochs 1 --subset 120
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from fer_ros.training import graph
from fer_ros.training.checkpoint import Trained
from fer_ros.training.data import load_dataset
from fer_ros.training.export import export_one
from fer_ros.training.fit import TrainSettings, cross_validate
from fer_ros.training.latency import measure_latency
from fer_ros.training.loihi import loihi_report
from fer_ros.training.model import ArchConfig, FerCnn
from fer_ros.training.pipeline import group_subset, split_dataset
from fer_ros.training.targets import TARGETS, Target
from fer_ros.training.train import add_common_args, classes_from_args, settings_from_args

# The presets (model.LOIHI_BASELINE, close to model.CPU_BASELINE) in search-space terms.
LOIHI_START = {
    "blocks": 2,
    "base_filters": 8,
    "growth": 2,
    "dense_layers": 1,
    "dense_units": 64,
    "dropout": 0.2,
}
EDGE_START = {
    "blocks": 3,
    "convs_per_block": 2,
    "base_filters": 16,
    "growth": 2,
    "dense_layers": 1,
    "dense_units": 64,
    "dropout": 0.3,
}


def suggest_arch(
    trial: optuna.Trial, target: Target, heads: tuple[str, ...] = ("flatten",)
) -> ArchConfig:
    """The search space: the knobs the paper's model names encode.

    ``heads`` is only a search dimension when it has several entries, so the default
    space (and its seeded proposals) stays what earlier searches explored.
    """
    if target.loihi:
        n_blocks = trial.suggest_int("blocks", 2, 3)
        convs = 1  # every conv must downsample, or layers grow past the neuron budget
        base = trial.suggest_categorical("base_filters", [4, 6, 8, 12, 16])
    else:
        n_blocks = trial.suggest_int("blocks", 2, 4)
        convs = trial.suggest_int("convs_per_block", 1, 2)
        base = trial.suggest_categorical("base_filters", [8, 16, 24, 32])
    growth = trial.suggest_categorical("growth", [1, 2])
    n_dense = trial.suggest_int("dense_layers", 1, 2)
    units = trial.suggest_categorical("dense_units", [32, 64, 128])
    dropout = round(trial.suggest_float("dropout", 0.1, 0.5, step=0.1), 2)
    blocks = tuple(tuple([min(base * growth**b, 128)] * convs) for b in range(n_blocks))
    head = "flatten" if target.loihi else heads[0]  # Loihi has no pooling, hence no GAP
    if not target.loihi and len(heads) > 1:
        head = trial.suggest_categorical("head", list(heads))
    return ArchConfig(
        blocks=blocks,
        dense=(units,) * n_dense,
        dropout=dropout,
        downsample="stride" if target.loihi else "maxpool",
        batchnorm=not target.loihi,
        conv_bias=not target.loihi,
        head=head,
    )


def hardware_check(
    cfg: ArchConfig,
    target: Target,
    classes: tuple[str, ...],
    max_latency: float | None,
    max_params: int,
    max_neurons: int | None,
    calib: np.ndarray,
) -> tuple[dict[str, Any], list[str]]:
    """Cost figures of ``cfg`` for ``target`` and the budget violations (empty = fits).

    Latency is measured on an untrained copy: it depends on the shapes, not the weights.
    """
    torch.manual_seed(0)
    model = FerCnn(cfg, len(classes)).eval()
    layers = graph.fold(model)
    figures: dict[str, Any] = {
        "params": graph.count_params(layers),
        "macs": graph.count_macs(layers),
    }
    problems = []
    if figures["params"] > max_params:
        problems.append(f"params {figures['params']} > {max_params}")
    if target.loihi:
        rep = loihi_report(cfg, layers)
        figures.update(neurons=rep["neurons_total"], cores=rep["cores_total"])
        problems += rep["violations"]
        if max_neurons and rep["neurons_total"] > max_neurons:
            problems.append(f"neurons {rep['neurons_total']} > {max_neurons}")
        return figures, problems
    if problems:  # no need to export what already fails
        return figures, problems
    t = Trained(model, cfg, classes, "grayscale", TrainSettings().canny)
    with tempfile.TemporaryDirectory() as tmp:
        file, _, _ = export_one(t, target.export, Path(tmp), "candidate", calib)
        lat = measure_latency(Path(tmp) / file, target.export)
    figures.update(latency_ms=lat["median_ms"], runtime=lat["runtime"])
    if max_latency is not None and lat["median_ms"] > max_latency:
        problems.append(f"latency {lat['median_ms']} ms > {max_latency} ms")
    return figures, problems


def run_search(args: argparse.Namespace) -> dict[str, Any]:
    target = TARGETS[args.target]
    s = settings_from_args(args)
    ds = group_subset(
        load_dataset(args.data, classes_from_args(args), args.group_regex), args.subset, s.seed
    )
    dev, _, split = split_dataset(ds, args.test_fraction, s.seed)
    calib = np.random.default_rng(0).random((16, 1, *ds.images.shape[1:]), np.float32)
    max_latency = args.max_latency_ms if args.max_latency_ms is not None else target.max_latency_ms
    max_params = args.max_params or target.max_params
    rows: list[dict[str, Any]] = []
    # CV results are shared between targets (same seed, same data, same architecture ->
    # same figures), so searching several targets does not retrain the same candidate.
    cache: dict[str, Any] = (
        json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    )

    def objective(trial: optuna.Trial) -> float:
        cfg = suggest_arch(trial, target, tuple(args.heads.split(",")))
        figures, problems = hardware_check(
            cfg, target, ds.classes, max_latency, max_params, args.max_neurons, calib
        )
        row = {
            "trial": trial.number,
            "arch": cfg.name,
            "dropout": cfg.dropout,
            **figures,
            "feasible": not problems,
            "violations": "; ".join(problems),
            "config": json.dumps(cfg.to_json()),
        }
        rows.append(row)
        if problems:
            row.update(cv_mean=None, cv_std=None)
            raise optuna.TrialPruned("; ".join(problems))
        key = json.dumps(
            {
                "arch": cfg.to_json(),
                "settings": repr(replace(s, progress=False)),
                "folds": args.folds,
                "data": split["test_groups_sha1"],
                "n": split["n_dev"],
            },
            sort_keys=True,
        )
        cv = cache.get(key)
        if cv is None:
            cv = cross_validate(dev, cfg, s, args.folds)
            cache[key] = cv
            if args.cache:
                args.cache.parent.mkdir(parents=True, exist_ok=True)
                args.cache.write_text(json.dumps(cache))
        row.update(
            cv_mean=cv["accuracy_mean"],
            cv_std=cv["accuracy_std"],
            balanced=cv["pooled"]["balanced_accuracy"],
        )
        return float(cv["accuracy_mean"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=s.seed),
        study_name=f"fer_{target.name}",
    )

    # start from the hand-designed preset, so the search can only improve on it
    study.enqueue_trial(LOIHI_START if target.loihi else EDGE_START)

    def enough(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        # infeasible proposals cost no training, so they do not use up the trial budget
        if sum(r["feasible"] for r in rows) >= args.trials:
            study.stop()

    study.optimize(objective, n_trials=args.trials * 4, callbacks=[enough], catch=())
    return write_results(args, target, rows, split, max_latency, max_params)


def _rank_key(r: dict[str, Any]) -> tuple:
    # best CV accuracy first; among equals the cheaper model (latency, then params).
    return (-(r["cv_mean"] or 0.0), r.get("latency_ms") or 0.0, r["params"])


def write_results(
    args: argparse.Namespace,
    target: Target,
    rows: list[dict[str, Any]],
    split: dict[str, Any],
    max_latency: float | None,
    max_params: int,
) -> dict[str, Any]:
    out = Path(args.out) / target.name
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    unique = [r for r in rows if not (r["config"] in seen or seen.add(r["config"]))]
    feasible = sorted(
        (r for r in unique if r["feasible"] and r["cv_mean"] is not None), key=_rank_key
    )
    ranked = feasible + [r for r in unique if r not in feasible]
    cols = [
        "trial",
        "arch",
        "dropout",
        "cv_mean",
        "cv_std",
        "balanced",
        "params",
        "macs",
        "latency_ms",
        "neurons",
        "cores",
        "feasible",
        "violations",
        "config",
    ]
    with open(out / "leaderboard.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(ranked)
    budget = {
        "target": target.name,
        "export": target.export,
        "max_latency_ms": max_latency,
        "max_params": max_params,
        "max_neurons": args.max_neurons,
        "note": target.note,
    }
    lines = [
        f"# Architecture search: {target.name}",
        "",
        f"Budget: {json.dumps(budget)}",
        "",
        f"Data: {Path(args.data).name}, subset {args.subset}, dev split "
        f"{split['n_dev']} samples; {args.folds}-fold group CV, {args.epochs} epochs, "
        f"{len(rows)} proposals ({sum(r['feasible'] for r in rows)} feasible, "
        f"{len(unique)} distinct), seed {args.seed}.",
        "",
        "| rank | arch | dropout | CV acc | ± | params | MACs | latency ms | neurons "
        "| cores | feasible |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(ranked, 1):
        cv = "" if r.get("cv_mean") is None else f"{r['cv_mean']:.4f}"
        sd = "" if r.get("cv_std") is None else f"{r['cv_std']:.4f}"
        lines.append(
            f"| {i} | `{r['arch']}` | {r['dropout']} | {cv} | {sd} | {r['params']} | {r['macs']} | "
            f"{r.get('latency_ms', '')} | {r.get('neurons', '')} | {r.get('cores', '')} | "
            f"{'yes' if r['feasible'] else 'no: ' + r['violations']} |"
        )
    (out / "leaderboard.md").write_text("\n".join(lines) + "\n")
    result = {"target": target.name, "budget": budget, "trials": len(rows)}
    if feasible:
        best = feasible[0]
        result["best"] = {k: best.get(k) for k in cols if k != "config"}
        result["config"] = json.loads(best["config"])
        (out / "best_arch.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--target", choices=sorted(TARGETS), required=True)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument(
        "--max-latency-ms",
        type=float,
        default=None,
        help="override the target's latency budget (ms, this CPU, batch 1)",
    )
    p.add_argument("--max-params", type=int, default=None)
    p.add_argument(
        "--max-neurons",
        type=int,
        default=8000,
        help="loihi: total neuron budget (emulator speed); 0 = cores only",
    )
    p.add_argument(
        "--out", type=Path, default=Path("build/search"), help="leaderboards go to <out>/<target>/"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="JSON file caching CV results across runs and targets",
    )
    p.add_argument(
        "--heads",
        default="flatten",
        help="comma list of heads to search (flatten, gap: global average pooling)",
    )
    p.set_defaults(folds=3, epochs=25)
    args = p.parse_args(argv)
    if (
        args.target == "loihi"
        and args.preprocessing == "grayscale"
        and "--preprocessing" not in (argv or __import__("sys").argv)
    ):
        args.preprocessing = "canny"  # the paper's edge input for the SNN
    torch.set_num_threads(args.threads)
    result = run_search(args)
    best = result.get("best")
    if best:
        print(
            f"best for {args.target}: {best['arch']} CV {best['cv_mean']:.4f} ± "
            f"{best['cv_std']:.4f}, params {best['params']}"
        )
        print(f"architecture: {Path(args.out) / args.target / 'best_arch.json'}")
    else:
        print(f"no feasible architecture for {args.target} in {result['trials']} trials")


if __name__ == "__main__":
    main()
