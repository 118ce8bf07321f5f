"""Losses and metrics for training (optax's formulas), numerically stable at any logits.

Per-example vs reduced: the cross-entropies, ``squared_error`` and ``l2_loss``
return one value per example (per element), as optax's do, so they compose
with masks and weights; take ``.mean()`` for a training loss. ``mse`` and
``accuracy`` return a scalar mean.

Stability: no function here computes ``log(softmax(x))`` or
``log(sigmoid(x))`` naively. Cross-entropy goes through ``log_softmax``
(``x - logsumexp(x)``, the maximum subtracted first) and the binary one
through ``log_sigmoid(x) = -softplus(-x)``, so logits of ``±1e4`` give
finite losses and the exact gradients ``softmax(x) - labels`` and
``sigmoid(x) - labels``.

Labels of ``softmax_cross_entropy`` are decided by dtype: **integer (or
bool) labels are class indices** of shape ``logits.shape[:-1]``; **float
labels are probabilities** (one-hot or soft) of the logits' shape.

Read next: ``fgrad/nn/__init__.py`` (``log_softmax``, ``log_sigmoid``).
"""

from __future__ import annotations

from typing import Any

import fgrad.numpy as fnp
from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.nn import log_sigmoid, log_softmax, one_hot
from fgrad.numpy._util import asarray_arg


def _is_index_labels(name: str, logits: Any, labels: Any) -> bool:
    """True for integer class indices, False for probabilities; checks the shapes."""
    logits_shape, labels_aval = get_aval(logits).shape, get_aval(labels)
    if dtypes.is_float(labels_aval.dtype):
        if labels_aval.shape != logits_shape:
            raise ValueError(f"{name}: float labels are probabilities and must have the "
                             f"logits' shape {logits_shape}, got {labels_aval.shape}")
        return False
    if labels_aval.shape != logits_shape[:-1]:
        raise ValueError(f"{name}: integer labels are class indices and must have shape "
                         f"logits.shape[:-1] = {logits_shape[:-1]}, got {labels_aval.shape}")
    return True


def _as_probabilities(name: str, logits: Any, labels: Any) -> Any:
    logits = asarray_arg(logits, name)
    labels = asarray_arg(labels, name)
    if _is_index_labels(name, logits, labels):
        labels = one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return labels


# --- classification losses ----------------------------------------------------------------------


def softmax_cross_entropy(logits: Any, labels: Any, label_smoothing: float = 0.0) -> Any:
    """Cross-entropy between ``softmax(logits)`` and ``labels``, one value per example.

    ``-sum(labels * log_softmax(logits), axis=-1)``, with integer labels turned
    into one-hot vectors first.

    Args:
      logits: unnormalized log-probabilities, shape ``(..., num_classes)``.
      labels: integer class indices of shape ``(...)`` (out-of-range indices
        give a zero label vector, hence a zero loss), or float probabilities
        of shape ``(..., num_classes)``.
      label_smoothing: ``alpha`` in ``[0, 1)``: the labels become
        ``(1 - alpha) * labels + alpha / num_classes`` (optax's ``smooth_labels``).

    Returns:
      The losses, shape ``logits.shape[:-1]``.

    Raises:
      ValueError: when the labels' shape does not fit their kind.

    >>> import fgrad.numpy as fnp
    >>> softmax_cross_entropy(fnp.array([[1e4, 0.0]]), fnp.array([1]))
    Array([10000.], dtype=float32)
    """
    logits = asarray_arg(logits, "softmax_cross_entropy")
    labels = _as_probabilities("softmax_cross_entropy", logits, labels)
    if label_smoothing:
        labels = (1 - label_smoothing) * labels + label_smoothing / logits.shape[-1]
    return -fnp.sum(labels * log_softmax(logits, axis=-1), axis=-1)


def softmax_cross_entropy_with_integer_labels(logits: Any, labels: Any) -> Any:
    """``softmax_cross_entropy`` for integer labels only (optax's name).

    Raises:
      TypeError: for float labels.
    """
    labels = asarray_arg(labels, "softmax_cross_entropy_with_integer_labels")
    if dtypes.is_float(get_aval(labels).dtype):
        raise TypeError("softmax_cross_entropy_with_integer_labels: labels must be integers, "
                        f"got {get_aval(labels).str_short()}")
    return softmax_cross_entropy(logits, labels)


def binary_cross_entropy_with_logits(logits: Any, labels: Any) -> Any:
    """Elementwise binary cross-entropy between ``sigmoid(logits)`` and ``labels``.

    ``-labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)``;
    ``labels`` are probabilities in ``[0, 1]`` (ints or bools are converted),
    broadcast against ``logits``. Its gradient is ``sigmoid(logits) - labels``.

    >>> import fgrad.numpy as fnp
    >>> binary_cross_entropy_with_logits(fnp.array([-1e4, 1e4]), fnp.array([1.0, 1.0]))
    Array([10000.,     0.], dtype=float32)
    """
    logits = asarray_arg(logits, "binary_cross_entropy_with_logits")
    labels = fnp.astype(asarray_arg(labels, "binary_cross_entropy_with_logits"), logits.dtype)
    return -labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)


sigmoid_binary_cross_entropy = binary_cross_entropy_with_logits  # optax's name


# --- regression losses --------------------------------------------------------------------------


def squared_error(predictions: Any, targets: Any = None) -> Any:
    """Elementwise ``(predictions - targets) ** 2`` (``targets`` default zero)."""
    errors = predictions if targets is None else fnp.subtract(predictions, targets)
    return fnp.square(errors)


def l2_loss(predictions: Any, targets: Any = None) -> Any:
    """Elementwise ``0.5 * (predictions - targets) ** 2`` (optax's ``l2_loss``)."""
    return 0.5 * squared_error(predictions, targets)


def mse(predictions: Any, targets: Any = None) -> Any:
    """Mean squared error: the mean over all elements of ``squared_error``, a scalar."""
    return fnp.mean(squared_error(predictions, targets))


mean_squared_error = mse


# --- metrics ------------------------------------------------------------------------------------


def accuracy(logits_or_probs: Any, labels: Any) -> Any:
    """The fraction of examples whose highest-scoring class is the label, a float scalar.

    Args:
      logits_or_probs: class scores, shape ``(..., num_classes)`` (any monotone
        scores: logits, log-probabilities or probabilities).
      labels: integer class indices of shape ``(...)``, or float one-hot (or
        probability) labels of the scores' shape, whose argmax is the class.

    Not differentiable (its gradient is zero); use it to monitor training.

    >>> import fgrad.numpy as fnp
    >>> accuracy(fnp.array([[0.1, 2.0], [3.0, 0.0]]), fnp.array([1, 1]))
    Array(0.5, dtype=float32)
    """
    scores = asarray_arg(logits_or_probs, "accuracy")
    labels = asarray_arg(labels, "accuracy")
    if not _is_index_labels("accuracy", scores, labels):
        labels = fnp.argmax(labels, axis=-1)
    correct = fnp.equal(fnp.argmax(scores, axis=-1), labels)
    return fnp.mean(fnp.astype(correct, dtypes.default_float_dtype()))


__all__ = [
    "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
    "binary_cross_entropy_with_logits", "sigmoid_binary_cross_entropy", "squared_error",
    "l2_loss", "mse", "mean_squared_error", "accuracy",
]
