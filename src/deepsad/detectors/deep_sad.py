"""Deep SAD: deep semi-supervised anomaly detection (Ruff et al., ICLR 2020)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector
from deepsad.detectors.fit_time import timed_fit
from deepsad.detectors.recipe import ONE_CLASS_TABULAR_RECIPE
from deepsad.training import deep_sad_loss, squared_distance
from deepsad.validation import check_fraction, check_semi_labels, warn_if_anomaly_labels_look_like_normals


class DeepSAD(BaseDeepDetector):
    """Deep Semi-supervised Anomaly Detection.

    Maps the data with a bias-free network phi into a space where unlabeled and
    labeled-normal samples concentrate around a fixed centre ``c`` while labeled
    anomalies are pushed away (paper Eq. 7). The anomaly score is ``||phi(x) - c||``.

    Parameters
    ----------
    network : "auto", "paper", MLPSpec, LeNetSpec, dict or torch.nn.Module, default="auto"
        The network phi. ``"auto"``: deepsad's default for the input shape -- the
        paper's LeNet for 1x28x28 and 3x32x32 images; for vectors the paper's MLP
        widths without BatchNorm and with Glorot init at gain 0.5
        (:func:`deepsad.models.auto_spec`) -- with BatchNorm, as Deep SVDD's, when ``y``
        holds no labeled anomaly (:meth:`recipe_for_labels`). ``"paper"``: the paper's network for the
        input shape (:func:`deepsad.models.default_spec`). A user module must be
        bias-free with no bounded activations to avoid hypersphere collapse.
    decoder : torch.nn.Module or None, default=None
        Decoder for pretraining a custom ``network``; built automatically for specs.
    eta : float, default=1.0
        Weight of the labeled terms relative to the unlabeled ones.
    eps : float, default=1e-6
        Added to distances of labeled samples so labeled anomalies give finite losses.
    epochs : int, default=150
        Training epochs of phi.
    lr : float, default=1e-4
        Adam learning rate; multiplied by 0.1 at each of ``lr_milestones``.
    lr_milestones : "auto" or sequence of int, default="auto"
        Epochs after which the learning rate drops tenfold. ``"auto"``: after epoch 50
        for images (the paper's two phases), never for vectors.
    weight_decay : float, default=1e-6
        L2 weight decay (the paper's lambda).
    batch_size : int, default=200
        Mini-batch size for pretraining and training.
    pretrain : "auto" or bool, default="auto"
        Pretrain an autoencoder whose encoder has phi's architecture and start phi from
        its weights. ``"auto"``: for images (the paper's recipe), not for vectors, where
        training from scratch ranks better across the development suite
        (docs/defaults_study.md).
    n_networks : "auto" or int, default="auto"
        Number of independently initialised networks, each with its own centre,
        trained together (:func:`deepsad.training.stacked.train_stacked`); the anomaly
        score is the mean of their distances, each divided by that network's median
        training distance (``distance_scales_``). ``"auto"``: 5 for vectors (a single small
        network varies a lot with its seed), 1 for images and for a custom module
        (which brings its own weights).
    pretrain_epochs : int, default=150
    pretrain_lr : float, default=1e-4
    pretrain_lr_milestones : sequence of int, default=(50,)
    pretrain_weight_decay : float, default=5e-4
        The reference implementation's autoencoder weight decay.
    output_activation : {"auto", "sigmoid", "identity"}, default="auto"
        Decoder output: ``auto`` uses a sigmoid when the training data lie in [0, 1].
    standardize : "auto" or bool, default="auto"
        Scale each feature to zero mean and unit variance with the training statistics
        (stored with the model and applied when scoring), as the paper does for the
        ODDS benchmarks. ``"auto"``: tabular data yes, images no.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Expected fraction of anomalies; sets ``offset_`` from the training scores
        (``"auto"``: 0.1).
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of pretraining and training: ``"bfloat16"`` runs forward passes and
        losses under bfloat16 autocast (weights, gradients and Adam's state stay
        float32); it pays off for larger convolutions (the CIFAR-10 LeNet, not the small
        MNIST one) on CPUs with AMX or AVX-512 BF16 and on recent GPUs (figures:
        docs/performance.md). Scoring always runs in float32. Not with
        :func:`deepsad.fit_stacked`.
    random_state : int, RandomState, Generator or None, default=None
        Seeds weight initialisation and shuffling; an int makes CPU runs reproducible.
    verbose : bool, default=False
        Show progress bars.

    Attributes
    ----------
    networks_ : list of torch.nn.Module
        The trained networks (evaluation mode), ``n_networks_`` of them.
    centers_ : numpy.ndarray of shape (n_networks_, rep_dim)
        Their hypersphere centres.
    network_, center_ : torch.nn.Module, numpy.ndarray of shape (rep_dim,)
        The first network and its centre (the model itself when ``n_networks_ == 1``).
    n_networks_ : int
        Resolved ``n_networks``.
    distance_scales_ : numpy.ndarray of shape (n_networks_,) or None
        Each network's median distance on the training data, by which an ensemble's
        distances are divided before averaging (None for one network: the score is then
        the distance itself, as in the paper).
    autoencoder_ : Autoencoder or None
        The pretrained autoencoder of the first network (its encoder is the starting
        point of phi); ``autoencoders_`` lists one per network.
    spec_ : MLPSpec, LeNetSpec or None
        The network specification used (None for a custom module).
    loss_history_, pretrain_loss_history_ : list of float
        Mean loss per epoch.
    threshold_ : float
        Anomaly-score threshold; ``offset_ = -threshold_``.
    input_shape_ : tuple of int
        Shape of one training sample; ``n_features_in_`` is its size.

    Examples
    --------
    >>> import numpy as np
    >>> from deepsad import DeepSAD
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5)).astype("float32")
    >>> y = np.zeros(300, dtype=int); y[:3] = -1  # three labeled anomalies
    >>> est = DeepSAD(epochs=2, random_state=0).fit(X, y)
    >>> est.anomaly_score(X[:2]).shape
    (2,)
    >>> est.n_networks_
    5

    The paper's settings (pretraining, one network, the learning-rate drop)::

        paper = DeepSAD.paper(random_state=0)
    """

    #: ``fit`` learns from labeled normals and labeled anomalies (read by :mod:`deepsad.methods`).
    uses_semi_labels: ClassVar[bool] = True

    def __init__(
        self,
        *,
        network: Any = "auto",
        decoder: nn.Module | None = None,
        eta: float = 1.0,
        eps: float = 1e-6,
        epochs: int = 150,
        lr: float = 1e-4,
        lr_milestones: Any = "auto",
        weight_decay: float = 1e-6,
        batch_size: int = 200,
        pretrain: Any = "auto",
        n_networks: Any = "auto",
        pretrain_epochs: int = 150,
        pretrain_lr: float = 1e-4,
        pretrain_lr_milestones: Any = (50,),
        pretrain_weight_decay: float = 5e-4,
        output_activation: str = "auto",
        standardize: Any = "auto",
        contamination: Any = "auto",
        device: Any = "auto",
        precision: str = "float32",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.network = network
        self.decoder = decoder
        self.eta = eta
        self.eps = eps
        self.epochs = epochs
        self.lr = lr
        self.lr_milestones = lr_milestones
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.pretrain = pretrain
        self.n_networks = n_networks
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_lr_milestones = pretrain_lr_milestones
        self.pretrain_weight_decay = pretrain_weight_decay
        self.output_activation = output_activation
        self.standardize = standardize
        self.contamination = contamination
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    @timed_fit
    def fit(self, X: Any, y: Any = None, *, autoencoder: nn.Module | None = None) -> "DeepSAD":
        """Fit Deep SAD.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
            Training samples (finite values).
        y : array-like of shape (n_samples,) or None
            Semi-labels: +1 labeled normal, -1 labeled anomaly, 0 unlabeled. ``None``
            means all unlabeled, which makes Deep SAD the one-class Deep SVDD.
        autoencoder : deepsad.models.Autoencoder, optional
            A trained autoencoder to use instead of pretraining one (e.g. the
            ``autoencoder_`` of an earlier fit on the same data with the same network
            and pretraining settings): its encoder weights are copied into phi and
            pretraining is skipped. With the same ``random_state`` the result equals a
            fit that pretrained that autoencoder itself. It is kept (not copied) as
            ``autoencoder_``.

        Returns
        -------
        DeepSAD
            The fitted estimator.
        """
        return self._fit_hypersphere(X, y, autoencoder)

    def _check_method_params(self) -> None:
        check_fraction("eta", self.eta, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        check_fraction("eps", self.eps, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)

    def recipe_for_labels(self, semi_labels: np.ndarray | None) -> Mapping[str, Any]:
        """Deep SAD's tabular recipe, or Deep SVDD's when no sample is labeled anomalous.

        Without a labeled anomaly Deep SAD's objective is Deep SVDD's one-class
        objective, and like Deep SVDD it then needs BatchNorm in its MLP: without it the
        representation shrinks towards the centre and the scores lose their meaning
        (docs/defaults_study.md, Deep SVDD).
        """
        if semi_labels is None or not np.any(np.asarray(semi_labels) == -1):
            return ONE_CLASS_TABULAR_RECIPE
        return self.tabular_recipe

    def _semi_labels(self, y: Any, n_samples: int) -> np.ndarray:
        semi_labels = check_semi_labels(y, n_samples)
        # counted from here: this method, _validate_training_data, _begin_fit, _fit_hypersphere, fit,
        # timed_fit's wrapper, the user's call
        warn_if_anomaly_labels_look_like_normals(semi_labels, estimator=type(self).__name__, stacklevel=7)
        return semi_labels

    def _output_loss(
        self, output: torch.Tensor, tensors: Sequence[torch.Tensor], indices: torch.Tensor
    ) -> torch.Tensor:
        _, semi_labels, center = tensors
        dist_sq = squared_distance(output, center)  # (batch,)
        return deep_sad_loss(dist_sq, semi_labels[indices], eta=float(self.eta), eps=float(self.eps))
