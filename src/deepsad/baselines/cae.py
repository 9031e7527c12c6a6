"""The (convolutional) autoencoder baseline, (C)AE: reconstruction error as anomaly score.

Paper, Appendix E: the decoder mirrors Deep SAD's encoder (upsampling for pooling),
the network is trained on the MSE reconstruction loss, and that loss is the score.
The networks, the trainer and the standardizer are Deep SAD's own
(:mod:`deepsad.models`, :mod:`deepsad.training`, :class:`BaseDeepDetector`); this
module only wires them into a different objective.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from deepsad.baselines.network_base import NetworkBaseline, load_module, module_arrays
from deepsad.detectors.fit_time import timed_fit
from deepsad.errors import InvalidInputError
from deepsad.models import Autoencoder, build_decoder, build_encoder, init_weights_, with_fused_lenets
from deepsad.training import (
    make_generator,
    map_batches,
    per_sample_reconstruction_error,
    pretrain_autoencoders,
    threads_for_fit,
)

logger = logging.getLogger(__name__)


def _build_autoencoder(
    spec: Any, input_shape: tuple[int, ...], output_activation: str, generator: torch.Generator
) -> Autoencoder:
    """Deep SAD's autoencoder for ``spec``: encoder phi + mirrored decoder, Glorot-initialised.

    LeNets in their fused form (the detectors' training and scoring form, same parameter names).
    """
    encoder = build_encoder(spec, input_shape)
    init_weights_(encoder, generator)
    decoder = build_decoder(spec, input_shape, output_activation=output_activation)
    init_weights_(decoder, generator)
    return with_fused_lenets(Autoencoder(encoder, decoder))


class CAE(NetworkBaseline):
    """(Convolutional) autoencoder baseline: anomaly score = squared reconstruction error.

    ``anomaly_score(X)`` is ``||x - decoder(encoder(x))||^2`` of each sample.

    The autoencoder is the one Deep SAD pretrains (encoder = Deep SAD's phi, decoder its
    mirror image) and is trained with the same trainer and the paper's autoencoder
    schedule. It is unsupervised: semi-labels are validated, labeled anomalies are
    left out of training (an autoencoder should learn to reconstruct normal data; the
    paper's training sets for unsupervised methods hold no labeled anomalies), and the
    rest is used whether labeled normal or unlabeled.

    Parameters
    ----------
    network : "auto", MLPSpec, LeNetSpec or dict, default="auto"
        The encoder architecture; ``"auto"`` picks the paper's network from the input
        shape. Custom ``nn.Module`` networks are not supported here.
    epochs : int, default=150
        Training epochs (paper: 150).
    lr : float, default=1e-4
        Adam learning rate, multiplied by 0.1 at each of ``lr_milestones``.
    lr_milestones : sequence of int, default=(50,)
        The paper's two-phase schedule: 1e-4 for 50 epochs, then 1e-5.
    weight_decay : float, default=5e-4
        The reference implementation's autoencoder weight decay (DeepSAD's
        ``pretrain_weight_decay``).
    batch_size : int, default=200
    output_activation : {"auto", "sigmoid", "identity"}, default="auto"
        Decoder output: ``auto`` uses a sigmoid when the training data lie in [0, 1].
    standardize : bool, default=False
        Tabular data only: per-feature zero mean / unit variance with training statistics.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Sets ``offset_`` from the training scores (``"auto"``: top 10% flagged).
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds the Glorot initialisation and the shuffling.
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    autoencoder_ : Autoencoder
        The trained autoencoder (evaluation mode); ``autoencoder_.encoder`` gives the codes.
    spec_ : MLPSpec or LeNetSpec
        The network specification used.
    output_activation_ : str
    loss_history_ : list of float
        Mean reconstruction loss per epoch.
    n_train_ : int
        Samples trained on (all but labeled anomalies).
    threshold_, offset_, input_shape_, n_features_in_, scaler_mean_, scaler_scale_
        As for :class:`~deepsad.detectors.DeepSAD`.

    Examples
    --------
    >>> import numpy as np
    >>> from deepsad.baselines import CAE
    >>> X = np.random.default_rng(0).normal(size=(100, 5)).astype("float32")
    >>> cae = CAE(epochs=2, random_state=0).fit(X)
    >>> cae.anomaly_score(X[:3]).shape, cae.encode(X[:3]).shape
    ((3,), (3, 8))
    """

    def __init__(
        self,
        *,
        network: Any = "auto",
        epochs: int = 150,
        lr: float = 1e-4,
        lr_milestones: Any = (50,),
        weight_decay: float = 5e-4,
        batch_size: int = 200,
        output_activation: str = "auto",
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
        self.output_activation = output_activation
        self.standardize = standardize
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    fitted_attribute = "autoencoder_"

    @timed_fit
    def fit(self, X: Any, y: Any = None) -> CAE:
        """Train the autoencoder on all samples except labeled anomalies.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
        y : array-like of shape (n_samples,) or None
            Semi-labels (+1 / 0 / -1); samples labeled -1 are not trained on.

        Returns
        -------
        CAE
            The fitted estimator.
        """
        self._check_common_params()
        if self.output_activation not in ("auto", "sigmoid", "identity"):
            raise InvalidInputError(
                f"output_activation must be 'auto', 'sigmoid' or 'identity', got {self.output_activation!r}"
            )
        X_np, semi_labels, generator = self._prepare_fit(X, y)
        keep = semi_labels != -1
        if int(keep.sum()) < 2:
            raise InvalidInputError(
                f"CAE trains on the samples not labeled as anomalies; only {int(keep.sum())} are left (need 2)"
            )
        self.output_activation_ = self._resolve_output_activation(X_np)
        # images in channels_last (the helpers' default), as in DeepSAD pretraining
        autoencoder = self._to_device(
            _build_autoencoder(self.spec_, self.input_shape_, self.output_activation_, generator)
        )
        X_t = self._as_tensor(X_np)
        X_train = X_t[torch.from_numpy(np.flatnonzero(keep)).to(X_t.device)]
        self.n_train_ = int(X_train.shape[0])
        with threads_for_fit(self.spec_, self.input_shape_, self._device):
            # the generator that initialised the autoencoder goes on to shuffle its batches
            (self.loss_history_,) = pretrain_autoencoders(
                [autoencoder], X_train, self._optimizer_config(), generators=[generator],
                device=self._device, progress=self.verbose, description="training CAE",
            )
        self.autoencoder_ = autoencoder.eval()
        self._set_threshold(self._reconstruction_errors(X_t))
        return self

    def _reconstruction_errors(self, X_t: torch.Tensor) -> np.ndarray:
        self.autoencoder_.eval()

        def error(batch: torch.Tensor) -> torch.Tensor:
            return per_sample_reconstruction_error(self.autoencoder_(batch), batch)

        return self._batch_scores(error, X_t)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        self._to_device(self.autoencoder_)
        return self._reconstruction_errors(self._as_tensor(X))

    def encode(self, X: Any) -> np.ndarray:
        """Bottleneck codes ``encoder(x)`` of shape (n_samples, rep_dim), float32."""
        check_is_fitted(self, "autoencoder_")
        X_np = self._validate_scoring_data(X)
        encoder = self._to_device(self.autoencoder_).encoder.eval()
        codes = map_batches(encoder, self._as_tensor(X_np), batch_size=self._scoring_batch_size())
        return codes.to("cpu").numpy()

    # ------------------------------------------------------------------ persistence hooks
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        meta = {"output_activation": self.output_activation_, "n_train": self.n_train_}
        return module_arrays(self.autoencoder_, "autoencoder."), meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.output_activation_ = meta["output_activation"]
        self.n_train_ = int(meta["n_train"])
        # the weights are overwritten right away; the seed is irrelevant
        autoencoder = _build_autoencoder(self.spec_, self.input_shape_, self.output_activation_, make_generator(0))
        self.autoencoder_ = load_module(autoencoder, arrays, "autoencoder.")
