"""One runner per method: fit on a workload, time it, score, measure memory.

Each runner returns a list of result dicts (one per row of the report; the image
workloads give the peers two rows: the images as given, which they reject, and the
images flattened to vectors). Runners raise on unexpected failure; the caller records
the message.

Timing (``time.perf_counter``):

* ``wall_s``: the whole ``fit`` call (ours: pretraining, centre, training, threshold;
  peers: their setup, training and scoring of the training data).
* ``pretrain_s_per_epoch`` / ``train_s_per_epoch``: time inside the training loops
  divided by their epochs. Ours: the pretraining and training calls that
  ``deepsad.detectors.deep_base`` makes (``pretrain_autoencoders``, ``train`` /
  ``train_stacked``, timed by wrapping those names for the run; see ``fit_ours_timed``). DeepOD: its
  ``_training`` method. PyOD (loop inline in ``fit``): ``fit`` minus its scoring of the
  training data, so it also holds PyOD's centre pass.
* ``train_samples_per_s``: training samples / ``train_s_per_epoch``.
* ``score_samples_per_s``: rows / seconds of the public scoring call on a large array
  (best of up to 3 calls, after a warm-up call on 1000 rows).

Memory: the process's peak resident set size during ``fit`` and the test scoring. On
Linux the kernel's high-water mark (VmHWM) is reset just before ``fit`` by writing 5 to
``/proc/self/clear_refs``, so the figure is the peak of this phase (it still includes
the interpreter, torch and the loaded data, reported as the pre-fit RSS); elsewhere
``resource.getrusage().ru_maxrss`` (peak since process start).
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from peerbench.workloads import DATASETS, Workload, scoring_rows

# ----------------------------------------------------------------------------- memory


def _status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float | None:
    return _status_mib("VmRSS")


def peak_rss_mib(reset_worked: bool) -> tuple[float, str]:
    hwm = _status_mib("VmHWM") if reset_worked else None
    if hwm is not None:
        return hwm, "VmHWM (reset before fit)"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "ru_maxrss (since process start)"


# ----------------------------------------------------------------------------- helpers


def throughput(score: Callable[[np.ndarray], Any], rows: np.ndarray, *, min_total_s: float = 1.0) -> float:
    """Rows per second of ``score(rows)``: best of up to 3 calls, after a small warm-up call."""
    score(rows[: min(1000, len(rows))])
    best, total, calls = math.inf, 0.0, 0
    while calls < 3 and (calls == 0 or total < min_total_s):
        started = time.perf_counter()
        score(rows)
        elapsed = time.perf_counter() - started
        best, total, calls = min(best, elapsed), total + elapsed, calls + 1
    return len(rows) / best


def _auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} non-finite test scores")
    return float(roc_auc_score(y_true, scores))


def error_text(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def base_row(w: Workload, settings: dict, method: str, label: str, network: str) -> dict:
    return {
        "dataset": w.name,
        "method": method,
        "label": label,
        "network": network,
        "seed": w.seed,
        "n_train": w.summary["n_train"],
        "n_labeled_anomaly": w.summary["n_labeled_anomaly"],
        "n_test": w.summary["n_test"],
        "pretrain_epochs": 0,
        "train_epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "error": None,
        "note": "",
        "load_1min_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _finish(row: dict, *, wall: float, train_s: float, auc: float, peak: tuple[float, str], base_rss: float | None,
            score_rate: float, score_rows: int, pretrain_s: float | None = None) -> dict:
    epochs = row["train_epochs"]
    row.update(
        wall_s=wall,
        pretrain_s_per_epoch=(pretrain_s / row["pretrain_epochs"]) if pretrain_s is not None and row["pretrain_epochs"] else None,
        train_s_per_epoch=train_s / epochs if epochs else None,
        train_samples_per_s=(row["n_train"] * epochs / train_s) if epochs and train_s > 0 else None,
        test_auc=auc,
        peak_rss_mib=peak[0],
        peak_rss_source=peak[1],
        base_rss_mib=base_rss,
        score_samples_per_s=score_rate,
        score_rows=score_rows,
    )
    return row


# ----------------------------------------------------------------------------- ours


def _ours_estimator(w: Workload, settings: dict, precision: str = "float32"):
    from deepsad import DeepSAD, LeNetSpec, MLPSpec

    info = DATASETS[w.name]
    if w.is_images:
        network = LeNetSpec(info["lenet"])
    else:
        network = MLPSpec(hidden_sizes=info["mlp_hidden"], rep_dim=info["rep_dim"])
    return DeepSAD(
        network=network,
        epochs=settings["epochs"],
        pretrain_epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        pretrain_lr=settings["lr"],
        standardize=not w.is_images,
        device=settings["device"],
        precision=precision,
        random_state=w.seed,
    )


def fit_ours_timed(est: Any, w: Workload) -> tuple[float, float | None, float | None]:
    """Fit; return wall seconds and the seconds of the pretraining and the training loops.

    The loops are timed by wrapping, for the duration of this fit only, the names that
    ``deepsad.detectors.deep_base`` calls them by: ``pretrain_autoencoders`` (the
    pretraining phase) and ``train`` / ``train_stacked`` (the training phase; an ensemble
    trained one network at a time calls ``train`` once per network, and the phase is the
    sum). A phase that did not run is None (e.g. no pretraining in the tabular defaults);
    if the library stops calling these names, both are None (the report then says so)
    and the wall time still stands.
    """
    from deepsad.detectors import deep_base

    phases: list[tuple[str, float]] = []
    wrapped = {"pretrain_autoencoders": "pretraining", "train": "training", "train_stacked": "training"}
    originals = {name: getattr(deep_base, name) for name in wrapped}

    def timed(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                phases.append((wrapped[name], time.perf_counter() - started))
        return call

    for name in wrapped:
        setattr(deep_base, name, timed(name))
    try:
        started = time.perf_counter()
        est.fit(w.X_train, w.semi_labels)
        wall = time.perf_counter() - started
    finally:
        for name, original in originals.items():
            setattr(deep_base, name, original)
    pretrain = [s for phase, s in phases if phase == "pretraining"]
    training = [s for phase, s in phases if phase == "training"]
    if not training:
        return wall, None, None
    return wall, (sum(pretrain) if pretrain else None), sum(training)


def run_ours(w: Workload, settings: dict, precision: str = "float32") -> list[dict]:
    method, label = ("ours", "deepsad DeepSAD") if precision == "float32" else (
        "ours-bf16", "deepsad DeepSAD, bfloat16 autocast")
    row = base_row(w, settings, method, label, DATASETS[w.name]["network"])
    est = _ours_estimator(w, settings, precision)
    reset = reset_peak_rss()
    base_rss = rss_mib()
    cpu = time.process_time()
    wall, pretrain_s, train_s = fit_ours_timed(est, w)
    # what the library's defaults resolved to: the tabular recipe trains an ensemble from scratch
    row["pretrain_epochs"] = settings["epochs"] if est.pretrain_ else 0
    if est.n_networks_ > 1:
        row["network"] = f"{row['network']}, {est.n_networks_} networks"
    row["cpu_per_wall"] = (time.process_time() - cpu) / wall
    auc = _auc(w.y_test, est.anomaly_score(w.X_test))
    peak = peak_rss_mib(reset)
    if train_s is None:
        row["note"] = "loop timing unavailable: deepsad no longer calls deep_base.train / train_stacked"
        train_s = float("nan")
    rows = scoring_rows(w, settings["score_rows"])
    rate = throughput(est.anomaly_score, rows)
    row["final_loss"] = est.loss_history_[-1] if est.loss_history_ else None
    row["final_pretrain_loss"] = est.pretrain_loss_history_[-1] if est.pretrain_loss_history_ else None
    return [_finish(row, wall=wall, train_s=train_s, auc=auc, peak=peak, base_rss=base_rss, score_rate=rate,
                    score_rows=len(rows), pretrain_s=pretrain_s)]


# ----------------------------------------------------------------------------- DeepOD


def _deepod_estimator(w: Workload, settings: dict):
    from deepod.models.tabular import DeepSAD as DeepODDeepSAD

    info = DATASETS[w.name]
    return DeepODDeepSAD(
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        rep_dim=info["rep_dim"],
        hidden_dims=",".join(str(h) for h in info["mlp_hidden"]),
        act="LeakyReLU",
        bias=False,
        device=settings["device"],
        verbose=0,
        random_state=w.seed,
    )


def _mlp_text(w: Workload) -> str:
    info = DATASETS[w.name]
    sizes = [int(np.prod(w.X_train.shape[1:])), *info["mlp_hidden"], info["rep_dim"]]
    return "MLP " + "-".join(str(s) for s in sizes)


def run_deepod(w: Workload, settings: dict) -> list[dict]:
    out = []
    y = (w.semi_labels == -1).astype(np.int64)  # DeepOD: 1 = labeled anomaly, 0 = unlabeled
    if w.is_images:
        # what a user with image arrays gets: the peer has no image network
        row = base_row(w, settings, "deepod", "DeepOD DeepSAD, images as given", "(no image network)")
        try:
            est = _deepod_estimator(w, settings)
            est.fit(w.X_train, y)
            row["note"] = "unexpectedly accepted 4-D images"
        except Exception as error:  # noqa: BLE001 - recorded in the report
            row["error"] = error_text(error)
        out.append(row)
    label = "DeepOD DeepSAD" + (", flattened pixels" if w.is_images else "")
    row = base_row(w, settings, "deepod", label, _mlp_text(w))
    est = _deepod_estimator(w, settings)
    X_fit = w.for_peers(w.X_train)
    loops: list[float] = []
    original = est._training

    def timed_training() -> Any:
        started = time.perf_counter()
        try:
            return original()
        finally:
            loops.append(time.perf_counter() - started)

    est._training = timed_training
    reset = reset_peak_rss()
    base_rss = rss_mib()
    cpu, started = time.process_time(), time.perf_counter()
    est.fit(X_fit, y)
    wall = time.perf_counter() - started
    row["cpu_per_wall"] = (time.process_time() - cpu) / wall
    auc = _auc(w.y_test, est.decision_function(w.for_peers(w.X_test)))
    peak = peak_rss_mib(reset)
    rows = scoring_rows(w, settings["score_rows"])
    rate = throughput(lambda X: est.decision_function(w.for_peers(X)), rows)
    out.append(_finish(row, wall=wall, train_s=sum(loops), auc=auc, peak=peak, base_rss=base_rss,
                       score_rate=rate, score_rows=len(rows)))
    return out


# ----------------------------------------------------------------------------- PyOD


def _pyod_estimator(w: Workload, settings: dict, n_features: int):
    from pyod.models.deep_svdd import DeepSVDD as PyODDeepSVDD

    info = DATASETS[w.name]
    return PyODDeepSVDD(
        n_features=n_features,
        hidden_neurons=[*info["mlp_hidden"], info["rep_dim"]],
        hidden_activation="leaky_relu",
        dropout_rate=0.0,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["lr"],
        l2_regularizer=1e-6,
        preprocessing=False,  # given the same standardized rows as the others
        verbose=0,
        random_state=w.seed,
    )


def run_pyod(w: Workload, settings: dict) -> list[dict]:
    out = []
    if w.is_images:
        row = base_row(w, settings, "pyod", "PyOD DeepSVDD, images as given", "(no image network)")
        try:
            est = _pyod_estimator(w, settings, int(np.prod(w.X_train.shape[1:])))
            est.fit(w.X_train)
            row["note"] = "unexpectedly accepted 4-D images"
        except Exception as error:  # noqa: BLE001 - recorded in the report
            row["error"] = error_text(error)
        out.append(row)
    label = "PyOD DeepSVDD" + (", flattened pixels" if w.is_images else "")
    row = base_row(w, settings, "pyod", label, _mlp_text(w))
    row["note"] = "unsupervised: labels unused"
    X_fit = w.for_peers(w.X_train)
    est = _pyod_estimator(w, settings, X_fit.shape[1])
    scoring_in_fit: list[float] = []
    original = est.decision_function

    def timed_decision_function(X: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(X)
        finally:
            scoring_in_fit.append(time.perf_counter() - started)

    est.decision_function = timed_decision_function
    reset = reset_peak_rss()
    base_rss = rss_mib()
    cpu, started = time.process_time(), time.perf_counter()
    est.fit(X_fit)  # unsupervised: all training data, no labels
    wall = time.perf_counter() - started
    row["cpu_per_wall"] = (time.process_time() - cpu) / wall
    est.decision_function = original
    auc = _auc(w.y_test, est.decision_function(w.for_peers(w.X_test)))
    peak = peak_rss_mib(reset)
    rows = scoring_rows(w, settings["score_rows"])
    rate = throughput(lambda X: est.decision_function(w.for_peers(X)), rows)
    out.append(_finish(row, wall=wall, train_s=wall - sum(scoring_in_fit), auc=auc, peak=peak, base_rss=base_rss,
                       score_rate=rate, score_rows=len(rows)))
    return out


# ----------------------------------------------------------------------------- compute floor


def _floor_loops(w: Workload, settings: dict, generator, *, stock: bool = False) -> tuple[float, float]:
    """Seconds of the bare autoencoder loop and of the bare Deep SAD loop.

    ``stock=True`` runs the same loops the way the authors' reference code computes them:
    stock layers (native BatchNorm2d, separate leaky ReLU and max-pool, upsampling before
    each transposed conv, as deepsad builds them) and the default (NCHW) memory format in
    both phases; otherwise the fused layers are swapped in (``deepsad.models.use_fused_layers``)
    as a deepsad fit does, in channels_last.
    """
    import torch

    from deepsad.models import Autoencoder, LeNetSpec, build_decoder, build_encoder, init_weights_, use_fused_layers
    from deepsad.training import batch_slices

    info = DATASETS[w.name]
    spec, shape = LeNetSpec(info["lenet"]), tuple(w.X_train.shape[1:])
    epochs = settings["epochs"]
    X = torch.from_numpy(w.X_train)
    semi = torch.from_numpy(w.semi_labels.astype(np.int64))
    n = X.shape[0]
    order = torch.randperm(n, generator=generator)
    bounds = batch_slices(n, settings["batch_size"])

    # autoencoder: forward + reconstruction loss + backward + Adam step
    layout = torch.contiguous_format if stock else torch.channels_last
    encoder, decoder = build_encoder(spec, shape), build_decoder(spec, shape, "sigmoid")
    init_weights_(encoder, generator)
    init_weights_(decoder, generator)
    if not stock:
        encoder, decoder = use_fused_layers(encoder), use_fused_layers(decoder)
    autoencoder = Autoencoder(encoder, decoder).to(memory_format=layout)
    batches = [X[order[a:b]].contiguous(memory_format=layout) for a, b in bounds]
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=settings["lr"], weight_decay=5e-4)
    autoencoder.train()
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = ((autoencoder(batch) - batch) ** 2).flatten(1).sum(dim=1).mean()
            loss.backward()
            optimizer.step()
    pretrain_s = time.perf_counter() - started

    # Deep SAD: phi (from the trained encoder) forward + Eq. 7 loss + backward + Adam step
    phi = build_encoder(spec, shape)
    if not stock:
        phi = use_fused_layers(phi)
    phi.load_state_dict(encoder.state_dict())
    phi = phi.to(memory_format=layout)
    phi.eval()
    with torch.inference_mode():
        center = torch.cat([phi(X[a:b]) for a, b in bounds]).mean(dim=0)
    small = center.abs() < 0.1
    center = torch.where(small, torch.where(center < 0, -0.1, 0.1), center).clone()
    batches = [X[order[a:b]].contiguous(memory_format=layout) for a, b in bounds]
    labels = [semi[order[a:b]] for a, b in bounds]
    optimizer = torch.optim.Adam(phi.parameters(), lr=settings["lr"], weight_decay=1e-6)
    phi.train()
    started = time.perf_counter()
    for _ in range(epochs):
        for batch, y in zip(batches, labels, strict=True):
            optimizer.zero_grad(set_to_none=True)
            dist = ((phi(batch) - center) ** 2).sum(dim=1)
            loss = torch.where(y == 0, dist, (dist + 1e-6) ** y.to(dist.dtype)).mean()
            loss.backward()
            optimizer.step()
    train_s = time.perf_counter() - started
    return pretrain_s, train_s


def run_floor(w: Workload, settings: dict) -> list[dict]:
    """The compute floor: a bare loop over preloaded batches, paired with our fit.

    The floor does forward, loss, backward and Adam step and nothing else, through the
    same networks (built with ``deepsad.models``), with the same batch size, optimiser
    settings, epochs, memory format (channels_last in both phases) and losses as our fit;
    no per-batch indexing, no loss bookkeeping, no LR scheduler. Beside it, the same bare
    loops computed as the authors' reference code computes them (stock layers, NCHW): a lower bound on the reference code's time on this machine (which also pays a
    per-sample DataLoader), so issue 6's "3x less than the reference" has a same-machine
    yardstick. Floor, stock loop and our fit alternate ``settings["floor_repeats"]`` times
    in this process and the fastest of each is kept, so that load hits all alike.
    """
    import torch

    if not w.is_images:
        raise ValueError("the compute floor is measured for the LeNet workloads only")
    epochs = settings["epochs"]
    row = base_row(w, settings, "floor", "compute floor (bare loop)", DATASETS[w.name]["network"])
    row["pretrain_epochs"] = epochs
    floor_pre, floor_train, ours_pre, ours_train, stock_pre, stock_train = [], [], [], [], [], []
    for repeat in range(max(1, settings.get("floor_repeats", 2))):
        pre, train = _floor_loops(w, settings, torch.Generator().manual_seed(w.seed + repeat))
        floor_pre.append(pre)
        floor_train.append(train)
        pre, train = _floor_loops(w, settings, torch.Generator().manual_seed(w.seed + repeat), stock=True)
        stock_pre.append(pre)
        stock_train.append(train)
        _, pre, train = fit_ours_timed(_ours_estimator(w, settings), w)
        if pre is not None:
            ours_pre.append(pre)
            ours_train.append(train)
    row["note"] = f"training loops only; fastest of {len(floor_pre)}, alternating with our fit in one process"
    row.update(
        wall_s=None,  # the worker's time also holds our paired fits: not a figure of the floor
        pretrain_s_per_epoch=min(floor_pre) / epochs,
        train_s_per_epoch=min(floor_train) / epochs,
        train_samples_per_s=w.summary["n_train"] * epochs / min(floor_train),
        test_auc=None,
        peak_rss_mib=None,
        base_rss_mib=None,
        score_samples_per_s=None,
        score_rows=None,
        paired_ours_pretrain_s_per_epoch=min(ours_pre) / epochs if ours_pre else None,
        paired_ours_train_s_per_epoch=min(ours_train) / epochs if ours_train else None,
        stock_pretrain_s_per_epoch=min(stock_pre) / epochs,
        stock_train_s_per_epoch=min(stock_train) / epochs,
        stock_pretrain_s_all=stock_pre,
        stock_train_s_all=stock_train,
        floor_pretrain_s_all=floor_pre,
        floor_train_s_all=floor_train,
        ours_pretrain_s_all=ours_pre,
        ours_train_s_all=ours_train,
    )
    return [row]


def run_ours_bf16(w: Workload, settings: dict) -> list[dict]:
    """Ours with ``precision="bfloat16"`` (AMX / AVX-512 BF16 on CPUs that have them)."""
    return run_ours(w, settings, precision="bfloat16")


RUNNERS = {"ours": run_ours, "ours-bf16": run_ours_bf16, "deepod": run_deepod, "pyod": run_pyod, "floor": run_floor}
