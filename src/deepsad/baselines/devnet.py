"""DevNet, the deviation network (Pang, Shen & van den Hengel, KDD 2019).

Not one of the paper's baselines: ADBench's strongest semi-supervised method, added for
the tabular quality benchmark. A small MLP phi maps a sample straight to a scalar
anomaly score. The deviation loss compares phi(x) with reference scores drawn from a
Gaussian prior N(0, 1): unlabeled (and labeled normal) samples are pulled to the
reference mean, labeled anomalies pushed at least ``margin`` reference standard
deviations above it. Unlabeled data are treated as normal; their contamination is
tolerated, as in the original method.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsad.baselines.network_base import NetworkDetector, load_module, module_arrays
from deepsad.detectors.estimator_base import check_bool
from deepsad.detectors.fit_time import timed_fit
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError, TrainingError
from deepsad.models import MLPSpec, init_weights_
from deepsad.training import make_generator, seed_from_random_state, threads_for_fit
from deepsad.validation import check_fraction, check_positive_int

logger = logging.getLogger(__name__)

#: ``contamination="auto"`` flags scores above the 95% quantile of the N(0, 1) prior: the
#: deviation is a z-score against the reference, so this reads as "anomalous at p < 0.05"
#: (the interpretation DevNet's authors give to its scores)
AUTO_Z_THRESHOLD = NormalDist().inv_cdf(0.95)


def deviation_loss(
    scores: torch.Tensor, is_anomaly: torch.Tensor, reference: torch.Tensor, *, margin: float = 5.0
) -> torch.Tensor:
    """DevNet's deviation loss, averaged over the batch.

    ``dev(x) = (phi(x) - mean(r)) / std(r)`` with ``r`` the reference scores (population
    standard deviation); the per-sample loss is ``|dev(x)|`` for normal / unlabeled
    samples and ``max(0, margin - dev(x))`` for labeled anomalies.

    Parameters
    ----------
    scores : torch.Tensor of shape (n,)
        Anomaly scores phi(x) of the batch.
    is_anomaly : torch.Tensor of shape (n,)
        1 for labeled anomalies, 0 otherwise (float or bool).
    reference : torch.Tensor of shape (l,)
        Reference scores drawn from the prior; a CPU tensor is fine for scores on
        another device (only its mean and standard deviation, 0-d tensors, are used).
    margin : float, default=5.0
        The confidence margin ``a``.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    mean = reference.mean()
    std = reference.std(unbiased=False)
    dev = (scores - mean) / std  # (n,)
    y = is_anomaly.to(scores.dtype)
    per_sample = (1.0 - y) * dev.abs() + y * torch.clamp(margin - dev, min=0.0)
    return per_sample.mean()


class DevNetScorer(nn.Module):
    """The DevNet scoring network: flatten, ``hidden_sizes`` ReLU layers, a linear output.

    Parameters
    ----------
    n_features : int
        Input size (samples are flattened first).
    hidden_sizes : sequence of int
        Widths of the hidden layers; empty gives a linear scorer.
    """

    def __init__(self, n_features: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features
        for size in hidden_sizes:
            # biases are fine: nothing here can collapse to a constant the way a hypersphere can
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)  # (n, *input_shape) -> (n, 1) -> (n,)


def _check_hidden_sizes(value: Any) -> tuple[int, ...]:
    try:
        sizes = tuple(value)
    except TypeError:
        raise InvalidInputError(f"hidden_sizes must be a sequence of positive integers, got {value!r}") from None
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0 for s in sizes):
        raise InvalidInputError(f"hidden_sizes must be a sequence of positive integers, got {value!r}")
    return tuple(int(s) for s in sizes)


def _build_scorer(n_features: int, hidden_sizes: Sequence[int], generator: torch.Generator) -> DevNetScorer:
    # nn.Linear's own initialisation draws from torch's global generator; leave it as it was
    with torch.random.fork_rng(devices=[]):
        net = DevNetScorer(n_features, hidden_sizes)
    init_weights_(net, generator)  # Glorot-uniform weights, zero biases (Keras' defaults, as DevNet used)
    return net


class DevNet(NetworkDetector):
    """Deviation network (DevNet): an MLP trained end to end to output anomaly scores.

    Each training step draws a balanced mini-batch (half labeled anomalies, drawn with
    replacement, half from the other samples) and ``n_reference`` fresh reference
    scores from N(0, 1), and minimises :func:`deviation_loss` with RMSprop. Labeled
    normals and unlabeled samples are both "normal" to the loss. Without labeled
    anomalies the method cannot train, so ``fit`` refuses. The anomaly score is the
    network's output phi(x), on the scale of the N(0, 1) prior: normal samples near 0,
    samples like the labeled anomalies near ``margin`` or above.

    Parameters
    ----------
    hidden_sizes : sequence of int, default=(20,)
        Hidden layer widths of the scoring MLP (ReLU); the paper's default DevNet has one
        layer of 20 units.
    margin : float, default=5.0
        Confidence margin ``a``: labeled anomalies are pushed ``margin`` reference
        standard deviations above the reference mean.
    n_reference : int, default=5000
        Reference scores drawn from N(0, 1) for each mini-batch.
    epochs : int, default=50
    batches_per_epoch : int, default=20
        An epoch is a fixed number of balanced batches, not a pass over the data.
    batch_size : int, default=512
        Samples per batch, half of them labeled anomalies (must be >= 2).
    lr : float, default=1e-3
        RMSprop learning rate.
    weight_decay : float, default=1e-2
        L2 penalty on all weights (RMSprop's ``weight_decay``).
    standardize : bool, default=False
        Tabular data only: per-feature zero mean / unit variance with training statistics.
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` flags scores above the 95% quantile of the prior (a deviation above
        :data:`AUTO_Z_THRESHOLD`, about 1.645); a fraction flags that share of the
        training scores.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initialisation, the batch draws and the reference scores (one local
        generator; torch's global one is untouched).
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    network_ : DevNetScorer
        The trained scoring network (evaluation mode).
    loss_history_ : list of float
        Mean deviation loss of each epoch.
    threshold_, offset_ : float
        Threshold on the anomaly score and its scikit-learn counterpart (``-threshold_``).
    input_shape_, n_features_in_, n_labeled_normal_, n_labeled_anomaly_
    scaler_mean_, scaler_scale_ : numpy.ndarray or None
        Standardization statistics (``None`` without ``standardize``).

    Examples
    --------
    >>> import numpy as np
    >>> from deepsad.baselines import DevNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> X[:10] += 4.0
    >>> y = np.zeros(200, dtype=int); y[:5] = -1
    >>> est = DevNet(epochs=5, random_state=0, device="cpu").fit(X, y)
    >>> est.anomaly_score(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        *,
        hidden_sizes: Sequence[int] = (20,),
        margin: float = 5.0,
        n_reference: int = 5000,
        epochs: int = 50,
        batches_per_epoch: int = 20,
        batch_size: int = 512,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        standardize: bool = False,
        contamination: Any = "auto",
        device: Any = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.margin = margin
        self.n_reference = n_reference
        self.epochs = epochs
        self.batches_per_epoch = batches_per_epoch
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    uses_semi_labels = True
    fitted_attribute = "network_"

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> tuple[int, ...]:
        hidden_sizes = _check_hidden_sizes(self.hidden_sizes)
        check_fraction("margin", self.margin, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        if check_positive_int("n_reference", self.n_reference) < 2:
            raise InvalidInputError(
                f"n_reference must be >= 2 (a standard deviation needs two draws), got {self.n_reference}"
            )
        check_positive_int("epochs", self.epochs, allow_zero=True)
        check_positive_int("batches_per_epoch", self.batches_per_epoch)
        if check_positive_int("batch_size", self.batch_size) < 2:
            raise InvalidInputError(f"batch_size must be >= 2 (half anomalies, half normal), got {self.batch_size}")
        check_fraction("lr", self.lr, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        check_fraction(
            "weight_decay", self.weight_decay, low=0.0, high=float("inf"), low_inclusive=True, high_inclusive=False
        )
        check_contamination(self.contamination)
        check_bool("standardize", self.standardize)
        return hidden_sizes

    # ------------------------------------------------------------------ fit
    @timed_fit
    def fit(self, X: Any, y: Any = None) -> DevNet:
        """Train the scoring network with the deviation loss.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
        y : array-like of shape (n_samples,)
            Semi-labels: -1 labeled anomaly, +1 labeled normal, 0 unlabeled (+1 and 0
            are both normal to the loss). At least one -1 is required.

        Returns
        -------
        DevNet
            The fitted estimator.

        Raises
        ------
        InvalidInputError
            For bad parameters, data or labels, and if ``y`` holds no labeled anomaly
            (or nothing else).
        TrainingError
            If the loss becomes NaN or infinite.
        """
        hidden_sizes = self._check_params()
        X_np, semi_labels = self._validate_training_data(X, y)
        self._require_labeled_anomalies(
            X_np.shape[0],
            none_message="DevNet needs labeled anomalies (y == -1) to train its deviation loss; y has none. "
            "Label at least one anomaly, or use an unsupervised detector (DeepSVDD, CAE, a shallow baseline)",
            all_message="every sample is a labeled anomaly; DevNet needs unlabeled or labeled-normal samples too",
        )
        X_np = self._fit_standardizer(X_np)
        generator = make_generator(seed_from_random_state(self.random_state))
        device = self._device
        net = _build_scorer(self.n_features_in_, hidden_sizes, generator).to(device)
        X_t = self._as_tensor(X_np)
        anomalies = torch.from_numpy(np.flatnonzero(semi_labels == -1)).to(device)
        normals = torch.from_numpy(np.flatnonzero(semi_labels != -1)).to(device)
        # the scorer is an MLP n_features -> hidden_sizes -> 1: the deep detectors' thread rule
        with threads_for_fit(MLPSpec(hidden_sizes=hidden_sizes, rep_dim=1), (self.n_features_in_,), device):
            self.loss_history_ = self._train(net, X_t, anomalies, normals, generator)
        self.network_ = net.eval()
        self._set_threshold(self._scores(X_t), natural_threshold=AUTO_Z_THRESHOLD)
        return self

    def _train(
        self,
        net: DevNetScorer,
        X_t: torch.Tensor,
        anomalies: torch.Tensor,
        normals: torch.Tensor,
        generator: torch.Generator,
    ) -> list[float]:
        """RMSprop over balanced batches; returns the mean loss of each epoch."""
        device = X_t.device
        n_anomalous = self.batch_size // 2
        n_normal = self.batch_size - n_anomalous
        # the batch's targets never change: anomalies first, then normals
        is_anomaly = torch.cat([torch.ones(n_anomalous), torch.zeros(n_normal)]).to(device)  # (batch,)
        optimizer = torch.optim.RMSprop(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        history: list[float] = []
        net.train()
        epochs = range(self.epochs)
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(epochs, desc="training DevNet", unit="epoch", leave=False)
            epochs = bar
        for epoch in epochs:
            total = torch.zeros((), device=device)  # one host sync per epoch, not per batch
            for _ in range(self.batches_per_epoch):
                # positions drawn on the CPU generator (reproducible on any device), with replacement
                pick_a = torch.randint(len(anomalies), (n_anomalous,), generator=generator).to(device)
                pick_n = torch.randint(len(normals), (n_normal,), generator=generator).to(device)
                indices = torch.cat([anomalies[pick_a], normals[pick_n]])  # (batch,)
                reference = torch.randn(self.n_reference, generator=generator)  # (l,), on the CPU
                optimizer.zero_grad(set_to_none=True)
                loss = deviation_loss(net(X_t[indices]), is_anomaly, reference, margin=float(self.margin))
                loss.backward()
                optimizer.step()
                total += loss.detach()
            epoch_loss = float(total) / self.batches_per_epoch
            if not np.isfinite(epoch_loss):
                raise TrainingError(
                    f"training DevNet: the loss became {epoch_loss} in epoch {epoch + 1}; "
                    "lower the learning rate or standardize the data"
                )
            history.append(epoch_loss)
            if bar is not None:
                bar.set_postfix(loss=f"{epoch_loss:.5g}")
            logger.debug("DevNet epoch %d/%d loss %.6g", epoch + 1, self.epochs, epoch_loss)
        return history

    # ------------------------------------------------------------------ scoring
    def _scores(self, X_t: torch.Tensor) -> np.ndarray:
        return self._batch_scores(self.network_.eval(), X_t)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        self.network_ = self.network_.to(self._device)
        return self._scores(self._as_tensor(X))

    # ------------------------------------------------------------------ persistence
    def _params_to_json(self) -> dict[str, Any]:
        params = super()._params_to_json()
        params["hidden_sizes"] = [int(s) for s in _check_hidden_sizes(self.hidden_sizes)]
        return params

    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return module_arrays(self.network_, "network."), {"loss_history": [float(v) for v in self.loss_history_]}

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.loss_history_ = list(meta["loss_history"])
        # the weights are overwritten right away; the seed is irrelevant
        net = _build_scorer(self.n_features_in_, _check_hidden_sizes(self.hidden_sizes), make_generator(0))
        self.network_ = load_module(net, arrays, "network.")
