"""The wall time of ``fit``, kept on the fitted estimator and in its saved model."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

FitMethod = TypeVar("FitMethod", bound=Callable[..., Any])


def timed_fit(fit: FitMethod) -> FitMethod:
    """Decorate an estimator's ``fit`` so that it sets ``fit_seconds_``, its wall time in seconds.

    ``deepsad info`` shows it for saved models; a fit that raises leaves the attribute
    as it was.
    """

    @functools.wraps(fit)
    def fit_and_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        fitted = fit(self, *args, **kwargs)
        self.fit_seconds_ = time.perf_counter() - started
        return fitted

    return fit_and_time  # type: ignore[return-value]
