"""The supervised deep binary classifier baseline (paper, Appendix E).

Anomaly detection read as classification: labeled anomalies are the positive class,
everything else (labeled normals *and* unlabeled samples, "most unlabeled data are
normal") the negative class, trained with binary cross-entropy on Deep SAD's encoder
plus a linear head.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsad.baselines.network_base import NetworkBaseline, load_module, module_arrays
from deepsad.detectors.fit_time import timed_fit
from deepsad.models import build_encoder, init_weights_, representation_dim, with_fused_lenets
from deepsad.training import make_generator, threads_for_fit

logger = logging.getLogger(__name__)


class BinaryClassifierNet(nn.Module):
    """An encoder followed by a linear head giving one logit per sample.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``(n, *input_shape)`` to ``(n, rep_dim)``.
    rep_dim : int
        Output size of ``encoder``.
    """

    def __init__(self, encoder: nn.Module, rep_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        # a classifier needs its offset; the no-bias rule only guards hypersphere collapse
        self.head = nn.Linear(rep_dim, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(1)  # (n, *input_shape) -> (n, rep_dim) -> (n,)


def _build_classifier(spec: Any, input_shape: tuple[int, ...], generator: torch.Generator) -> BinaryClassifierNet:
    encoder = with_fused_lenets(build_encoder(spec, input_shape))  # the detectors' training form
    net = BinaryClassifierNet(encoder, representation_dim(encoder, input_shape))
    init_weights_(net, generator)  # uniform Glorot for encoder and head, zero bias (paper, App. E)
    return net


class SupervisedClassifier(NetworkBaseline):
    """Supervised deep binary classifier: anomaly score = logit of "anomaly".

    Labeled anomalies (``y == -1``) are the positive class; labeled normals and all
    unlabeled samples are the negative class (the paper assigns "normal" to every
    unlabeled example). The network is Deep SAD's encoder phi with a linear head (with
    bias), Glorot-initialised and trained with ``BCEWithLogitsLoss`` using the paper's
    schedule. Without labeled anomalies there is nothing to classify, so ``fit`` refuses.
    ``anomaly_score(X)`` is the logit ``log(p / (1 - p))`` of the predicted anomaly
    probability ``p``: it ranks like ``p`` but does not saturate to ties at 0 or 1.

    Parameters
    ----------
    network : "auto", MLPSpec, LeNetSpec or dict, default="auto"
        The encoder architecture (as for :class:`~deepsad.detectors.DeepSAD`).
    epochs : int, default=150
    lr : float, default=1e-4
    lr_milestones : sequence of int, default=(50,)
        Learning rate drops tenfold after these epochs (paper: 1e-4 then 1e-5).
    weight_decay : float, default=1e-6
    batch_size : int, default=200
    standardize : bool, default=False
        Tabular data only: per-feature zero mean / unit variance with training statistics.
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` uses the classifier's own boundary (logit 0, probability 0.5); a
        fraction flags that share of the training scores.
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    network_ : BinaryClassifierNet
        The trained classifier (evaluation mode).
    spec_ : MLPSpec or LeNetSpec
    loss_history_ : list of float
        Mean binary cross-entropy per epoch.
    threshold_, offset_, input_shape_, n_features_in_, scaler_mean_, scaler_scale_
        As for :class:`~deepsad.detectors.DeepSAD`.
    """

    def __init__(
        self,
        *,
        network: Any = "auto",
        epochs: int = 150,
        lr: float = 1e-4,
        lr_milestones: Any = (50,),
        weight_decay: float = 1e-6,
        batch_size: int = 200,
        standardize: bool = False,
        contamination: Any = "auto",
        device: Any = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.network = network
        self.epochs = epochs
        self.lr = lr
        self.lr_milestones = lr_milestones
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.standardize = standardize
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    uses_semi_labels = True
    fitted_attribute = "network_"

    @timed_fit
    def fit(self, X: Any, y: Any = None) -> SupervisedClassifier:
        """Train the classifier.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
        y : array-like of shape (n_samples,)
            Semi-labels: -1 labeled anomaly (positive class), +1 labeled normal and 0
            unlabeled (both negative class). At least one -1 is required.

        Returns
        -------
        SupervisedClassifier

        Raises
        ------
        InvalidInputError
            If ``y`` holds no labeled anomaly (or only labeled anomalies).
        """
        self._check_common_params()
        X_np, semi_labels, generator = self._prepare_fit(X, y)
        self._require_labeled_anomalies(
            X_np.shape[0],
            none_message="SupervisedClassifier needs labeled anomalies (y == -1) as its positive class; "
            "y has none. Use an unsupervised detector (CAE, DeepSVDD, a shallow baseline) instead",
            all_message="every sample is a labeled anomaly; the classifier needs normal/unlabeled samples",
        )
        device = self._device
        net = _build_classifier(self.spec_, self.input_shape_, generator)
        with torch.no_grad():
            # start at the constant predictor of the class prior (log-odds of the anomaly
            # share) instead of p = 0.5: with a zero bias the first epochs only push every
            # logit down, which the network does fastest for the most atypical samples,
            # the anomalies, and the ranking comes out inverted
            prior = self.n_labeled_anomaly_ / X_np.shape[0]
            net.head.bias.fill_(float(np.log(prior / (1.0 - prior))))
        net = self._to_device(net)
        X_t = self._as_tensor(X_np)
        targets = torch.from_numpy((semi_labels == -1).astype(np.float32)).to(device)  # (n,), 1 = anomaly
        bce = nn.BCEWithLogitsLoss()

        def batch_loss(indices: torch.Tensor) -> torch.Tensor:
            return bce(net(X_t[indices]), targets[indices])

        with threads_for_fit(self.spec_, self.input_shape_, self._device):
            self.loss_history_ = self._train_network(net, batch_loss, X_np.shape[0], generator, "training SupervisedClassifier")
        self.network_ = net.eval()
        # logit 0 = probability 0.5 is the classifier's own decision boundary
        self._set_threshold(self._logits(X_t), natural_threshold=0.0)
        return self

    def _logits(self, X_t: torch.Tensor) -> np.ndarray:
        return self._batch_scores(self.network_.eval(), X_t)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        self._to_device(self.network_)
        return self._logits(self._as_tensor(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``[P(normal), P(anomaly)]`` of shape (n_samples, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.anomaly_score(X)))
        return np.column_stack([1.0 - p, p])

    # ------------------------------------------------------------------ persistence hooks
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return module_arrays(self.network_, "network."), {}

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        net = _build_classifier(self.spec_, self.input_shape_, make_generator(0))  # weights overwritten below
        self.network_ = load_module(net, arrays, "network.")
