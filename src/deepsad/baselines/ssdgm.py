"""The semi-supervised deep generative model baseline, SS-DGM (Kingma et al., 2014).

Deep SAD's paper (Section 4, Appendix E) compares against Kingma, Rezende, Mohamed and
Welling's M2 and M1+M2 models, with the latent class probability ``q(y = anomaly | x)``
as the anomaly score. The class variable is binary: ``y = -1`` (labeled anomaly) is the
class "anomaly", ``y = +1`` (labeled normal) the class "normal", and for unlabeled
samples (``y = 0``) the class is marginalised out.

M2 (Kingma et al., 2014, Section 2.2 and Eqs. 6-9) has

* an inference network ``q(z | x, y) = N(mu(x, y), diag(exp(logvar(x, y))))``,
* a classifier ``q(y | x) = Cat(softmax(logits(x)))`` over the two classes,
* a generative network ``p(x | y, z)`` with ``p(z) = N(0, I)`` and a class prior ``p(y)``,

and maximises, for labeled pairs, the bound ``-L(x, y) = E_q[log p(x | y, z)] + log p(y)
- KL(q(z | x, y) || p(z))`` and, for unlabeled samples, ``-U(x) = sum_y q(y | x) (-L(x, y))
+ H(q(y | x))``, plus ``alpha`` times the classification log-likelihood of the labeled
pairs. M1+M2 first trains a variational autoencoder M1 on ``x`` and then M2 on M1's
latent means.

The bounds are pure functions of tensors (:func:`labeled_bound`,
:func:`unlabeled_bound`, :func:`m2_objective`), so they can be checked by hand; the
networks are this module's small MLPs built from the project's dense block; training
uses deepsad's generic trainer with the paper's schedule.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepsad.baselines.network_base import NetworkBaseline, load_module, module_arrays
from deepsad.detectors.fit_time import timed_fit
from deepsad.errors import InvalidInputError
from deepsad.models import MLPSpec, default_spec, init_weights_
from deepsad.models.blocks import dense_block
from deepsad.models.init import leaving_global_rng_alone
from deepsad.models.specs import as_network_param
from deepsad.training import make_generator, map_batches, seed_from_random_state

logger = logging.getLogger(__name__)

#: Column of the class "normal" in the classifier's logits and in the bounds.
NORMAL = 0
#: Column of the class "anomaly": ``anomaly_score`` is ``q(y = ANOMALY | x)``.
ANOMALY = 1
N_CLASSES = 2

#: Likelihoods of ``p(x | y, z)``: Bernoulli (logits output) or Gaussian with unit variance.
LIKELIHOODS = ("bernoulli", "gaussian")
VARIANTS = ("m2", "m1+m2")

#: Kingma et al. (2014), Section 4.1: alpha = 0.1 * N.
ALPHA_PER_SAMPLE = 0.1

#: Kingma et al.'s M2 for MNIST: one hidden layer of 500 units, a 50-d latent z; used
#: (flattened) for images, where the paper's ODDS MLPs would be far too small.
IMAGE_SPEC = MLPSpec(hidden_sizes=(500,), rep_dim=50)

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------- the bounds
def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, diag(exp(logvar))) || N(0, I))`` of each sample, in closed form.

    Parameters
    ----------
    mean, logvar : torch.Tensor of shape (n, k)

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    return 0.5 * (logvar.exp() + mean**2 - 1.0 - logvar).sum(dim=1)


def log_likelihood(x: torch.Tensor, output: torch.Tensor, likelihood: str) -> torch.Tensor:
    """``log p(x | ...)`` of each sample given the decoder's output.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
        The data (in [0, 1] for the Bernoulli likelihood).
    output : torch.Tensor of shape (n, d)
        Decoder output: Bernoulli *logits* for ``"bernoulli"``, the mean for ``"gaussian"``.
    likelihood : {"bernoulli", "gaussian"}
        ``"gaussian"`` has unit variance, so it is the negative half squared error up to
        the constant ``d / 2 * log(2 pi)``, which is kept so that the bound is a true bound.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    if likelihood == "bernoulli":
        # from logits: exact and stable where sigmoid outputs would round to 0 or 1
        return -F.binary_cross_entropy_with_logits(output, x, reduction="none").sum(dim=1)
    if likelihood == "gaussian":
        return -0.5 * ((x - output) ** 2 + _LOG_2PI).sum(dim=1)
    raise InvalidInputError(f"likelihood must be one of {list(LIKELIHOODS)}, got {likelihood!r}")


def vae_bound(
    x: torch.Tensor, output: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, *, likelihood: str
) -> torch.Tensor:
    """The evidence lower bound of a VAE (M1): ``log p(x | z) - KL(q(z | x) || p(z))``.

    ``output`` is the decoder's output for one reparameterised sample ``z ~ q(z | x)``
    (a one-sample estimate of the expectation); the KL term is exact.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    return log_likelihood(x, output, likelihood) - gaussian_kl(mean, logvar)


def labeled_bound(
    x: torch.Tensor,
    output: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    log_prior: torch.Tensor | float,
    *,
    likelihood: str,
) -> torch.Tensor:
    """M2's bound for a labeled pair, ``-L(x, y)`` (Kingma et al., 2014, Eq. 6).

    ``-L(x, y) = log p(x | y, z) + log p(y) - KL(q(z | x, y) || N(0, I))`` with ``z`` the
    sample of ``q(z | x, y)`` the decoder ``output`` was computed from.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
    output : torch.Tensor of shape (n, d)
        Decoder output for ``(y, z)`` (logits or mean, see :func:`log_likelihood`).
    mean, logvar : torch.Tensor of shape (n, k)
        Parameters of ``q(z | x, y)``.
    log_prior : torch.Tensor of shape (n,) or float
        ``log p(y)`` of each sample's class.
    likelihood : {"bernoulli", "gaussian"}

    Returns
    -------
    torch.Tensor of shape (n,)
        The bound (higher is better); the loss is its negative ``L(x, y)``.
    """
    return vae_bound(x, output, mean, logvar, likelihood=likelihood) + log_prior


def unlabeled_bound(labeled_bounds: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
    """M2's bound for an unlabeled sample, ``-U(x)`` (Kingma et al., 2014, Eq. 7).

    ``-U(x) = sum_y q(y | x) * (-L(x, y)) + H(q(y | x))``: the class is marginalised
    with the classifier's probabilities, which lets the unlabeled data train the
    classifier too.

    Parameters
    ----------
    labeled_bounds : torch.Tensor of shape (n, n_classes)
        ``-L(x, y)`` for every class ``y`` (see :func:`labeled_bound`).
    class_logits : torch.Tensor of shape (n, n_classes)
        Logits of ``q(y | x)``.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    log_q = F.log_softmax(class_logits, dim=1)  # (n, K)
    q = log_q.exp()
    entropy = -(q * log_q).sum(dim=1)
    return (q * labeled_bounds).sum(dim=1) + entropy


def m2_objective(
    labeled_bounds: torch.Tensor,
    class_logits: torch.Tensor,
    classes: torch.Tensor,
    *,
    label_weight: float,
) -> torch.Tensor:
    """Batch mean of M2's per-sample loss, the minibatch form of ``J^alpha`` (Eq. 9).

    A labeled sample (class index ``classes[i] >= 0``) contributes
    ``L(x, y) + label_weight * (-log q(y | x))``, an unlabeled one (``classes[i] == -1``)
    ``U(x)``.

    Kingma et al.'s ``J^alpha = sum_labeled L + sum_unlabeled U + alpha * E_labeled[-log
    q(y | x)]``; divided by the number of samples N, it is the mean of these per-sample
    losses over the training set when ``label_weight = alpha / n_labeled``, so each
    mini-batch mean is an unbiased estimate of ``J^alpha / N``.

    Parameters
    ----------
    labeled_bounds : torch.Tensor of shape (n, n_classes)
        ``-L(x, y)`` for every sample and class.
    class_logits : torch.Tensor of shape (n, n_classes)
        Logits of ``q(y | x)``.
    classes : torch.Tensor of shape (n,), int64
        Class index of labeled samples, -1 for unlabeled ones.
    label_weight : float
        ``alpha / n_labeled``.

    Returns
    -------
    torch.Tensor
        Scalar loss (to minimise).
    """
    labeled = classes >= 0
    index = classes.clamp(min=0).unsqueeze(1)  # (n, 1); unlabeled rows pick a dummy column
    neg_labeled = -labeled_bounds.gather(1, index).squeeze(1)
    classification = F.cross_entropy(class_logits, index.squeeze(1), reduction="none")
    per_sample = torch.where(
        labeled,
        neg_labeled + label_weight * classification,
        -unlabeled_bound(labeled_bounds, class_logits),
    )
    return per_sample.mean()


# ---------------------------------------------------------------------------- networks
def _mlp(in_features: int, hidden_sizes: tuple[int, ...], out_features: int, spec: MLPSpec) -> nn.Sequential:
    """Hidden layers as in deepsad's MLPs, then a Linear output *with* bias.

    The hidden blocks are the project's (bias-free Linear, BatchNorm without affine,
    leaky ReLU), so that all deep methods share one architecture family (paper, Sec. 4);
    the outputs here are means, log-variances, logits and reconstructions, which need
    their offsets (the no-bias rule only guards Deep SVDD's hypersphere collapse).
    """
    widths = [in_features, *hidden_sizes]
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += dense_block(width_in, width_out, negative_slope=spec.negative_slope, bn_eps=spec.bn_eps)
    layers.append(nn.Linear(widths[-1], out_features, bias=True))
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """``q(z | inputs) = N(mean, diag(exp(logvar)))``: ``(n, in_features) -> 2 x (n, latent_dim)``."""

    def __init__(self, in_features: int, spec: MLPSpec) -> None:
        super().__init__()
        self.latent_dim = spec.rep_dim
        self.net = _mlp(in_features, spec.hidden_sizes, 2 * spec.rep_dim, spec)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.net(inputs).chunk(2, dim=1)  # (n, 2k) -> (n, k), (n, k)
        return mean, logvar


def _reparameterise(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


class VAE(nn.Module):
    """M1: a variational autoencoder on flat samples ``(n, d)`` with latent size ``spec.rep_dim``.

    Parameters
    ----------
    in_features : int
        Sample size d.
    spec : MLPSpec
        Hidden widths (encoder; the decoder mirrors them) and latent size ``rep_dim``.
    """

    def __init__(self, in_features: int, spec: MLPSpec) -> None:
        super().__init__()
        self.encoder = GaussianEncoder(in_features, spec)
        self.decoder = _mlp(spec.rep_dim, tuple(reversed(spec.hidden_sizes)), in_features, spec)

    def bound(self, x: torch.Tensor, likelihood: str, generator: torch.Generator | None) -> torch.Tensor:
        """One-sample ELBO of each row of ``x``: ``(n, d) -> (n,)``."""
        mean, logvar = self.encoder(x)
        output = self.decoder(_reparameterise(mean, logvar, generator))
        return vae_bound(x, output, mean, logvar, likelihood=likelihood)


class M2(nn.Module):
    """Kingma et al.'s M2 on flat samples ``(n, d)`` with a binary class.

    Parameters
    ----------
    in_features : int
        Sample size d.
    spec : MLPSpec
        Hidden widths of the classifier and of ``q(z | x, y)`` (the decoder
        ``p(x | y, z)`` mirrors them) and the latent size ``rep_dim``.
    """

    def __init__(self, in_features: int, spec: MLPSpec) -> None:
        super().__init__()
        self.classifier = _mlp(in_features, spec.hidden_sizes, N_CLASSES, spec)
        self.encoder = GaussianEncoder(in_features + N_CLASSES, spec)
        self.decoder = _mlp(spec.rep_dim + N_CLASSES, tuple(reversed(spec.hidden_sizes)), in_features, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``q(y | x)``: ``(n, d) -> (n, 2)``, column 1 = anomaly."""
        return self.classifier(x)

    def labeled_bounds(
        self, x: torch.Tensor, log_prior: torch.Tensor, likelihood: str, generator: torch.Generator | None
    ) -> torch.Tensor:
        """``-L(x, y)`` for both classes: ``(n, d) -> (n, 2)``.

        Both classes go through the networks as one batch of ``2n`` rows (class-major),
        which unlabeled samples need anyway and which keeps it one forward pass.
        """
        n = x.shape[0]
        x_both = x.repeat(N_CLASSES, 1)  # (2n, d)
        labels = torch.arange(N_CLASSES, device=x.device).repeat_interleave(n)  # (2n,)
        onehot = F.one_hot(labels, N_CLASSES).to(x.dtype)  # (2n, 2)
        mean, logvar = self.encoder(torch.cat([x_both, onehot], dim=1))
        z = _reparameterise(mean, logvar, generator)  # (2n, k)
        output = self.decoder(torch.cat([z, onehot], dim=1))  # (2n, d)
        bounds = labeled_bound(x_both, output, mean, logvar, log_prior[labels], likelihood=likelihood)
        return bounds.reshape(N_CLASSES, n).T  # (n, 2)


def _build(cls: type, in_features: int, spec: MLPSpec, generator: torch.Generator) -> nn.Module:
    """``cls(in_features, spec)`` with the paper's uniform Glorot init from ``generator``."""
    with leaving_global_rng_alone():  # torch's default init must not advance the global RNG
        module = cls(in_features, spec)
    init_weights_(module, generator)
    return module


# ---------------------------------------------------------------------------- the detector
class SSDGM(NetworkBaseline):
    """Semi-supervised deep generative model (Kingma et al., 2014): M2 or M1+M2.

    The anomaly score is M2's latent class probability ``q(y = anomaly | x)`` (Deep SAD
    paper, Section 4). Labeled anomalies (``y == -1``) are the class "anomaly", labeled
    normals (``y == +1``) the class "normal"; unlabeled samples (``y == 0``) enter
    through the bound ``U(x)`` with the class marginalised. Without labeled anomalies
    the classifier has no example of its class "anomaly" (the paper runs SS-DGM only
    with labeled anomalies), so ``fit`` refuses.

    Parameters
    ----------
    variant : {"m2", "m1+m2"}, default="m2"
        ``"m1+m2"`` first trains a VAE (M1) on ``x`` and then M2 on its latent means.
        The paper reports the better of the two.
    network : "auto", MLPSpec or dict, default="auto"
        Hidden widths and latent size of every MLP (``rep_dim`` = size of z). ``"auto"``:
        for tabular data the paper's ODDS MLP for that input size (e.g. 32-16 hidden,
        latent 8), as Deep SAD's paper uses the same networks for all deep methods; for
        images (flattened) Kingma et al.'s M2: 500 hidden units, latent 50. Convolutional
        specs are not supported.
    alpha : "auto" or float >= 0, default="auto"
        Weight of the labeled classification term ``alpha * E_labeled[-log q(y | x)]``;
        ``"auto"`` is Kingma et al.'s ``0.1 * N`` (N = training samples).
    prior : "uniform" or float in (0, 1), default="uniform"
        ``p(y = anomaly)`` of the generative model; ``"uniform"`` (0.5) as in Kingma
        et al. There is no "labeled class frequencies" option: in the paper's scenarios
        only anomalies are labeled, which would make that prior degenerate.
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        ``p(x | y, z)`` (and M1's ``p(x | z)``): ``"auto"`` takes a Bernoulli for data in
        [0, 1] (images) and a unit-variance Gaussian otherwise, the rule that picks the
        autoencoders' sigmoid output. M2 on M1's latent codes is always Gaussian.
    epochs : int, default=150
        Training epochs (for M1 and M2 each with ``"m1+m2"``).
    lr : float, default=1e-4
    lr_milestones : sequence of int, default=(50,)
        The paper's two-phase schedule: 1e-4 for 50 epochs, then 1e-5.
    weight_decay : float, default=1e-6
    batch_size : int, default=200
    standardize : bool, default=False
        Tabular data only: per-feature zero mean / unit variance with training statistics.
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` uses the classifier's boundary ``q(y = anomaly | x) = 0.5``; a fraction
        flags that share of the training scores.
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds the Glorot initialisation, the shuffling and the reparameterisation noise.
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    m2_ : M2
        The trained M2 (evaluation mode); ``m2_(x)`` gives the class logits.
    m1_ : VAE or None
        The trained M1 of ``"m1+m2"``.
    spec_ : MLPSpec
        The network specification used.
    likelihood_ : str
        The likelihood of ``p(x | ...)`` on the input data.
    alpha_ : float
        The classification weight used.
    prior_anomaly_ : float
        ``p(y = anomaly)``.
    loss_history_ : list of float
        Mean M2 loss ``J^alpha / N`` per epoch.
    m1_loss_history_ : list of float
        Mean negative ELBO of M1 per epoch (empty for ``"m2"``).
    threshold_, offset_, input_shape_, n_features_in_, scaler_mean_, scaler_scale_
        As for :class:`~deepsad.detectors.DeepSAD`.

    Notes
    -----
    Departures from Kingma et al. (2014), made to match Deep SAD's protocol: Adam with the
    paper's schedule, batch size 200, uniform Glorot init and the project's hidden blocks
    (BatchNorm, leaky ReLU) instead of softplus MLPs; M2 of ``"m1+m2"`` reads M1's latent
    means rather than samples, so that scoring is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> from deepsad.baselines import SSDGM
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 5)).astype("float32")
    >>> y = np.zeros(100, dtype=int); y[:3] = -1
    >>> model = SSDGM(epochs=2, random_state=0).fit(X, y)
    >>> model.anomaly_score(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        *,
        variant: str = "m2",
        network: Any = "auto",
        alpha: Any = "auto",
        prior: Any = "uniform",
        likelihood: str = "auto",
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
        self.variant = variant
        self.network = network
        self.alpha = alpha
        self.prior = prior
        self.likelihood = likelihood
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

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        self._check_common_params()
        if self.variant not in VARIANTS:
            raise InvalidInputError(f"variant must be one of {list(VARIANTS)}, got {self.variant!r}")
        if not (self.network == "auto" or isinstance(as_network_param(self.network), MLPSpec)):
            raise InvalidInputError(
                f"SSDGM uses MLPs on flattened samples; network must be 'auto' or an MLPSpec, got {self.network!r}"
            )
        if self.likelihood not in ("auto", *LIKELIHOODS):
            raise InvalidInputError(f"likelihood must be 'auto', 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.alpha != "auto" and not (_is_number(self.alpha) and 0.0 <= float(self.alpha) < math.inf):
            raise InvalidInputError(f"alpha must be 'auto' or a finite number >= 0, got {self.alpha!r}")
        if self.prior != "uniform" and not (_is_number(self.prior) and 0.0 < float(self.prior) < 1.0):
            raise InvalidInputError(f"prior must be 'uniform' or p(y = anomaly) in (0, 1), got {self.prior!r}")

    def _resolve_spec(self) -> MLPSpec:
        network = as_network_param(self.network)
        if isinstance(network, MLPSpec):
            return network
        if len(self.input_shape_) == 1:
            return cast(MLPSpec, default_spec(self.input_shape_))  # tabular shapes always get an MLP
        return IMAGE_SPEC

    def _resolve_likelihood(self, X: np.ndarray) -> str:
        if self.likelihood != "auto":
            return self.likelihood
        # the rule of the autoencoders' output activation: sigmoid (here Bernoulli) for [0, 1] data
        return "bernoulli" if float(X.min()) >= 0.0 and float(X.max()) <= 1.0 else "gaussian"

    # ------------------------------------------------------------------ fit
    uses_semi_labels = True
    fitted_attribute = "m2_"

    @timed_fit
    def fit(self, X: Any, y: Any = None) -> SSDGM:
        """Train M2 (after M1 for ``variant="m1+m2"``).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
        y : array-like of shape (n_samples,)
            Semi-labels: -1 labeled anomaly, +1 labeled normal, 0 unlabeled. At least one
            -1 is required.

        Returns
        -------
        SSDGM
            The fitted estimator.

        Raises
        ------
        InvalidInputError
            For invalid parameters, data or labels; if ``y`` holds no labeled anomaly;
            or if every sample is a labeled anomaly.
        """
        self._check_params()
        X_np, semi_labels = self._validate_training_data(X, y)
        self._require_labeled_anomalies(
            X_np.shape[0],
            none_message="SSDGM needs at least one labeled anomaly (y == -1): its classifier q(y | x) gives the "
            "probability of the class 'anomaly', and with no example of that class there is nothing to "
            "learn. Use an unsupervised detector (CAE, DeepSVDD, a shallow baseline) instead",
            all_message="every sample is a labeled anomaly; SSDGM needs normal or unlabeled samples too",
        )
        self.spec_ = self._resolve_spec()
        X_np = self._fit_standardizer(X_np)
        self.likelihood_ = self._resolve_likelihood(X_np)
        n_samples = X_np.shape[0]
        n_labeled = self.n_labeled_anomaly_ + self.n_labeled_normal_
        self.alpha_ = ALPHA_PER_SAMPLE * n_samples if self.alpha == "auto" else float(self.alpha)
        self.prior_anomaly_ = 0.5 if self.prior == "uniform" else float(self.prior)

        # independent streams: M1, M2 and the reparameterisation noise of each
        m1_seed, m2_seed, m1_noise_seed, m2_noise_seed = (
            int(s) for s in np.random.SeedSequence(seed_from_random_state(self.random_state)).generate_state(4)
        )
        # (n, d): the MLPs read flattened samples, so the NCHW layout spares a copy
        X_t = self._as_tensor(X_np, channels_last=False).reshape(n_samples, -1)

        self.m1_loss_history_ = []
        self.m1_ = None
        if self.variant == "m1+m2":
            self.m1_ = self._train_m1(X_t, make_generator(m1_seed), self._noise_generator(m1_noise_seed))
            X_t = self._m1_codes(X_t)

        classes_np = np.select([semi_labels == -1, semi_labels == 1], [ANOMALY, NORMAL], default=-1)
        classes = torch.from_numpy(classes_np.astype(np.int64)).to(X_t.device)
        self.m2_ = self._train_m2(
            X_t, classes, self.alpha_ / n_labeled, make_generator(m2_seed), self._noise_generator(m2_noise_seed)
        )
        logger.info(
            "SSDGM (%s): %d samples, %d labeled anomalies, %d labeled normals, alpha %.4g, final loss %.5g",
            self.variant,
            n_samples,
            self.n_labeled_anomaly_,
            self.n_labeled_normal_,
            self.alpha_,
            self.loss_history_[-1] if self.loss_history_ else float("nan"),
        )
        self._set_threshold(self._anomaly_probability(X_t), natural_threshold=0.5)
        return self

    def _noise_generator(self, seed: int) -> torch.Generator:
        # on the data's device, so the noise is drawn where it is used
        generator = torch.Generator(device=self._device)
        generator.manual_seed(seed)
        return generator

    @property
    def _m2_likelihood(self) -> str:
        # M1's latent means are real-valued, so M2 on them models a Gaussian
        return "gaussian" if self.variant == "m1+m2" else self.likelihood_

    def _train_m1(self, X_t: torch.Tensor, generator: torch.Generator, noise: torch.Generator) -> VAE:
        vae = self._to_device(_build(VAE, X_t.shape[1], self.spec_, generator))

        def batch_loss(indices: torch.Tensor) -> torch.Tensor:
            return -vae.bound(X_t[indices], self.likelihood_, noise).mean()

        self.m1_loss_history_ = self._train_network(vae, batch_loss, X_t.shape[0], generator, "training SSDGM M1")
        return vae.eval()

    def _train_m2(
        self,
        X_t: torch.Tensor,
        classes: torch.Tensor,
        label_weight: float,
        generator: torch.Generator,
        noise: torch.Generator,
    ) -> M2:
        m2 = self._to_device(_build(M2, X_t.shape[1], self.spec_, generator))
        log_prior = self._log_prior().to(X_t.device)
        likelihood = self._m2_likelihood

        def batch_loss(indices: torch.Tensor) -> torch.Tensor:
            x = X_t[indices]
            bounds = m2.labeled_bounds(x, log_prior, likelihood, noise)  # (b, 2)
            return m2_objective(bounds, m2(x), classes[indices], label_weight=label_weight)

        self.loss_history_ = self._train_network(m2, batch_loss, X_t.shape[0], generator, "training SSDGM M2")
        return m2.eval()

    def _log_prior(self) -> torch.Tensor:
        """``log p(y)`` per class, shape (2,)."""
        prior = torch.empty(N_CLASSES, dtype=torch.float32)
        prior[ANOMALY], prior[NORMAL] = self.prior_anomaly_, 1.0 - self.prior_anomaly_
        return prior.log()

    # ------------------------------------------------------------------ scoring
    def _m1_codes(self, X_t: torch.Tensor) -> torch.Tensor:
        """M1's latent means ``(n, d) -> (n, k)``: the data M2 sees in ``"m1+m2"``."""
        encoder = self.m1_.encoder.eval()
        return map_batches(lambda batch: encoder(batch)[0], X_t, batch_size=self._scoring_batch_size())

    def _anomaly_probability(self, X_t: torch.Tensor) -> np.ndarray:
        """``q(y = anomaly | x)`` for M2's inputs ``X_t``, float64."""
        logits = map_batches(self.m2_.eval(), X_t, batch_size=self._scoring_batch_size())
        # softmax in float64: float32 rounds probabilities near 1 to ties
        return torch.softmax(logits.to("cpu").double(), dim=1)[:, ANOMALY].numpy()

    def _raw_scores(self, X_np: np.ndarray) -> np.ndarray:
        X_t = self._as_tensor(X_np, channels_last=False).reshape(X_np.shape[0], -1)
        if self.m1_ is not None:
            self.m1_ = self._to_device(self.m1_)
            X_t = self._m1_codes(X_t)
        self.m2_ = self._to_device(self.m2_)
        return self._anomaly_probability(X_t)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[q(normal | x), q(anomaly | x)]`` of shape (n_samples, 2)."""
        p = self.anomaly_score(X)
        return np.column_stack([1.0 - p, p])

    # ------------------------------------------------------------------ persistence hooks
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = module_arrays(self.m2_, "m2.")
        if self.m1_ is not None:
            arrays.update(module_arrays(self.m1_, "m1."))
        meta = {
            "likelihood": self.likelihood_,
            "alpha": self.alpha_,
            "prior_anomaly": self.prior_anomaly_,
            "m1_loss_history": self.m1_loss_history_,
            "has_m1": self.m1_ is not None,
        }
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.likelihood_ = meta["likelihood"]
        self.alpha_ = float(meta["alpha"])
        self.prior_anomaly_ = float(meta["prior_anomaly"])
        self.m1_loss_history_ = list(meta["m1_loss_history"])
        generator = make_generator(0)  # the weights are overwritten right away; the seed is irrelevant
        in_features = self.n_features_in_
        self.m1_ = None
        if meta["has_m1"]:
            self.m1_ = load_module(_build(VAE, in_features, self.spec_, generator), arrays, "m1.")
            in_features = self.spec_.rep_dim
        self.m2_ = load_module(_build(M2, in_features, self.spec_, generator), arrays, "m2.")


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_, str)) and isinstance(value, (int, float, np.integer, np.floating))
