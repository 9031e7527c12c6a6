"""Hybrid baselines: a shallow detector on the bottleneck codes of a trained autoencoder.

Paper, Appendix E: "we apply the OC-SVM, IF, KDE, and SSAD ... to the resulting
bottleneck representations given by the respective converged autoencoders". The
autoencoder is Deep SAD's pretraining autoencoder when one exists (pass the fitted
DeepSAD / DeepSVDD), a fitted :class:`CAE`, or one trained here.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepsad.baselines.cae import CAE
from deepsad.baselines.gram_memo import GramMemo
from deepsad.baselines.network_base import NetworkDetector, load_module, module_arrays
from deepsad.baselines.shallow_methods import SHALLOW_METHODS
from deepsad.detectors.deep_base import BaseDeepDetector
from deepsad.detectors.fit_time import timed_fit
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec, build_encoder, spec_from_dict, spec_to_dict, with_fused_lenets
from deepsad.training import map_batches

logger = logging.getLogger(__name__)


class Hybrid(NetworkDetector):
    """A shallow detector (OC-SVM, IF, KDE, SSAD) applied to autoencoder codes.

    The anomaly score is the shallow detector's anomaly score of the codes.

    Parameters
    ----------
    shallow : {"ocsvm", "iforest", "kde", "ssad"}, default="ocsvm"
        The shallow method, a key of :data:`deepsad.baselines.SHALLOW_METHODS`.
    shallow_params : dict or None, default=None
        Parameters of the shallow method. ``random_state`` defaults to this
        estimator's when the method has one.
    autoencoder : None, CAE, DeepSAD or DeepSVDD, default=None
        Where the codes come from. ``None`` trains a :class:`CAE` with ``cae_params``;
        a fitted :class:`CAE` is used as is; a fitted ``DeepSAD`` / ``DeepSVDD`` lends
        the autoencoder of its pretraining (refused if it was fitted with
        ``pretrain=False``). A given estimator's standardization is applied before
        encoding. The estimator is not modified; its encoder is copied.
    cae_params : dict or None, default=None
        Parameters of the own CAE (``device``, ``random_state`` and ``verbose`` default
        to this estimator's).
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` uses the shallow detector's threshold; a fraction flags that share
        of the training scores.
    device : str or torch.device, default="auto"
        Where the encoder runs.
    random_state : int, RandomState, Generator or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    encoder_ : torch.nn.Module
        Copy of the autoencoder's encoder (evaluation mode).
    shallow_ : detector
        The fitted shallow detector (its inputs are codes).
    autoencoder_source_ : str
        ``"DeepSAD pretraining"``, ``"DeepSVDD pretraining"``, ``"given CAE"`` or ``"own CAE"``.
    cae_ : CAE or None
        The CAE trained here (``autoencoder=None`` only).
    codes_shape_ : tuple of int
        Shape ``(n_samples, rep_dim)`` of the codes the shallow detector was fitted on.
    spec_ : MLPSpec or LeNetSpec or None
        The encoder's spec (None for a custom network, which cannot be saved).
    scaler_mean_, scaler_scale_ : numpy.ndarray or None
        The source's standardization, applied before encoding.
    threshold_, offset_, input_shape_, n_features_in_
        As for every deepsad detector.
    """

    def __init__(
        self,
        *,
        shallow: str = "ocsvm",
        shallow_params: dict[str, Any] | None = None,
        autoencoder: Any = None,
        cae_params: dict[str, Any] | None = None,
        contamination: Any = "auto",
        device: Any = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.shallow = shallow
        self.shallow_params = shallow_params
        self.autoencoder = autoencoder
        self.cae_params = cae_params
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    #: ``y`` reaches the shallow detector (and the own CAE); whether a hybrid learns from
    #: labels is its shallow method's ``uses_semi_labels`` (only SSAD's is True).
    uses_semi_labels = True
    fitted_attribute = "shallow_"

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> type:
        methods = SHALLOW_METHODS
        if not isinstance(self.shallow, str) or self.shallow not in methods:
            raise InvalidInputError(f"shallow must be one of {', '.join(sorted(methods))}; got {self.shallow!r}")
        for name in ("shallow_params", "cae_params"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise InvalidInputError(f"{name} must be a dict or None, got {value!r}")
        check_contamination(self.contamination)
        return methods[self.shallow]

    def _shallow_estimator(self, cls: type) -> Any:
        params = dict(self.shallow_params or {})
        if "random_state" in cls().get_params() and "random_state" not in params:
            params["random_state"] = self.random_state
        try:
            return cls(**params)
        except TypeError as error:
            raise InvalidInputError(f"shallow_params do not fit {cls.__name__}: {error}") from None

    def _resolve_source(self, X: np.ndarray, y: Any) -> tuple[nn.Module, Any, str]:
        """The encoder, the estimator that standardizes inputs, and the provenance."""
        source = self.autoencoder
        if source is None:
            params = {"device": self.device, "random_state": self.random_state, "verbose": self.verbose}
            params.update(self.cae_params or {})
            try:
                cae = CAE(**params)
            except TypeError as error:
                raise InvalidInputError(f"cae_params do not fit CAE: {error}") from None
            self.cae_ = cae.fit(X, y)
            return cae.autoencoder_.encoder, cae, "own CAE"
        if isinstance(source, CAE):
            self._require_fitted(source, "autoencoder_")
            return source.autoencoder_.encoder, source, "given CAE"
        if isinstance(source, BaseDeepDetector):
            self._require_fitted(source, "network_")
            if source.autoencoder_ is None:
                raise InvalidInputError(
                    f"the given {type(source).__name__} has no pretraining autoencoder (it was fitted with "
                    "pretrain=False or pretrain_epochs=0); refit it with pretraining, or pass a fitted CAE "
                    "or autoencoder=None to train one"
                )
            return source.autoencoder_.encoder, source, f"{type(source).__name__} pretraining"
        hint = ""
        if isinstance(source, dict):
            hint = " (a placeholder recorded by save: pass the fitted estimator to refit)"
        raise InvalidInputError(
            "autoencoder must be None, a fitted CAE, or a fitted DeepSAD / DeepSVDD with a pretraining "
            f"autoencoder; got {source!r}{hint}"
        )

    @staticmethod
    def _require_fitted(estimator: Any, attribute: str) -> None:
        try:
            check_is_fitted(estimator, attribute)
        except NotFittedError:
            raise InvalidInputError(f"the given {type(estimator).__name__} is not fitted; fit it first") from None

    # ------------------------------------------------------------------ fit
    #: ``fit`` takes ``gram_memo`` and hands it to a shallow detector that takes it.
    accepts_gram_memo = True

    @timed_fit
    def fit(self, X: Any, y: Any = None, *, gram_memo: GramMemo | None = None) -> Hybrid:
        """Encode ``X`` with the autoencoder and fit the shallow detector on the codes.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
            Raw samples, shaped like the autoencoder's training data (standardization of
            a given source is applied here).
        y : array-like of shape (n_samples,) or None
            Semi-labels, passed to the CAE (if trained here) and to the shallow
            detector (SSAD uses them).
        gram_memo : GramMemo or None, default=None
            Passed to the shallow detector's ``fit`` if it takes one (the OC-SVM): the
            candidates of a search share the Gram matrix of the codes.

        Returns
        -------
        Hybrid
        """
        shallow_cls = self._check_params()
        X_np, semi_labels = self._validate_training_data(X, y)
        self.cae_ = None
        encoder, scaler_source, self.autoencoder_source_ = self._resolve_source(X_np, semi_labels)
        if tuple(scaler_source.input_shape_) != tuple(self.input_shape_):
            raise InvalidInputError(
                f"X has per-sample shape {self.input_shape_}, but the autoencoder was trained on "
                f"samples of shape {tuple(scaler_source.input_shape_)}"
            )
        self.spec_ = getattr(scaler_source, "spec_", None)
        self.scaler_mean_ = getattr(scaler_source, "scaler_mean_", None)
        self.scaler_scale_ = getattr(scaler_source, "scaler_scale_", None)
        self.encoder_ = copy.deepcopy(encoder).to(self._device).eval()
        codes = self._codes(self._standardized(X_np))
        self.codes_shape_ = tuple(int(s) for s in codes.shape)
        logger.debug("Hybrid: fitting %s on codes of shape %s", shallow_cls.__name__, self.codes_shape_)
        shallow_fit_args = {"gram_memo": gram_memo} if getattr(shallow_cls, "accepts_gram_memo", False) else {}
        self.shallow_ = self._shallow_estimator(shallow_cls).fit(codes, semi_labels, **shallow_fit_args)
        self._set_threshold(lambda: self.shallow_.anomaly_score(codes), natural_threshold=self.shallow_.threshold_)
        return self

    def _codes(self, X_std: np.ndarray) -> np.ndarray:
        """Codes of validated samples, standardized as the source standardized its data."""
        self.encoder_.to(self._device).eval()
        return map_batches(self.encoder_, self._as_tensor(X_std), batch_size=self._scoring_batch_size()).to("cpu").numpy()

    # ------------------------------------------------------------------ scoring
    def encode(self, X: Any) -> np.ndarray:
        """Codes ``encoder(x)`` of shape (n_samples, rep_dim) that the shallow detector sees."""
        check_is_fitted(self, "shallow_")
        return self._codes(self._validate_scoring_data(X))

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.shallow_.anomaly_score(self._codes(X)), dtype=np.float64)

    # ------------------------------------------------------------------ persistence hooks
    def _params_to_json(self) -> dict[str, Any]:
        params = super()._params_to_json()
        source = params["autoencoder"]
        if source is not None and not isinstance(source, dict):
            # the fitted source is not saved (its encoder is, in the weights); the JSON
            # records what it was, and refitting a loaded Hybrid needs a real estimator
            params["autoencoder"] = {"type": "fitted", "class": type(source).__name__}
        if params["cae_params"] is not None:
            cae_params = dict(params["cae_params"])
            if isinstance(cae_params.get("network"), (MLPSpec, LeNetSpec)):
                cae_params["network"] = spec_to_dict(cae_params["network"])  # CAE accepts the dict form
            params["cae_params"] = cae_params
        return params

    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.spec_ is None:
            raise InvalidInputError("saving a Hybrid whose encoder is a custom network module is not supported")
        arrays = module_arrays(self.encoder_, "encoder.")
        shallow_arrays, shallow_meta = self.shallow_._export_state()
        arrays.update({f"shallow.{k}": v for k, v in shallow_arrays.items()})
        meta: dict[str, Any] = {
            "spec": spec_to_dict(self.spec_),
            "autoencoder_source": self.autoencoder_source_,
            "codes_shape": list(self.codes_shape_),
            "shallow_params": self.shallow_._params_to_json(),
            "shallow_state": shallow_meta,
        }
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.spec_ = spec_from_dict(meta["spec"])
        self.encoder_ = load_module(with_fused_lenets(build_encoder(self.spec_, self.input_shape_)), arrays, "encoder.")
        shallow_params = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(meta["shallow_params"]).items()
        }
        shallow = SHALLOW_METHODS[self.shallow](**shallow_params)
        prefix = "shallow."
        shallow_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        shallow._import_state(shallow_arrays, meta["shallow_state"])
        self.shallow_ = shallow
        self.cae_ = None  # its encoder lives on in encoder_; the full CAE is not saved
        self.autoencoder_source_ = str(meta["autoencoder_source"])
        self.codes_shape_ = tuple(int(s) for s in meta["codes_shape"])
