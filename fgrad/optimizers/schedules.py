"""Learning-rate schedules: functions from the 0-based step index to a step size.

Every optimizer takes ``step_size`` as a scalar or a schedule; ``make_schedule`` turns
a scalar into a ``constant`` schedule. A schedule must work both for a Python int step
(it then usually returns a Python float or a weakly typed array) and for a traced int32
step inside ``fgrad.jit``, so schedules are written with Python operators and
``fgrad.numpy`` functions only, never Python control flow on the step.

Two families live here:

* JAX's (``jax.example_libraries.optimizers``), with identical formulas: ``constant``,
  ``exponential_decay``, ``inverse_time_decay``, ``polynomial_decay``,
  ``piecewise_constant``, ``make_schedule``.
* optax's, with optax's semantics and defaults: ``cosine_decay``
  (``optax.cosine_decay_schedule``), ``warmup_cosine``
  (``optax.warmup_cosine_decay_schedule``), ``one_cycle`` (the COSINE one-cycle,
  ``optax.cosine_onecycle_schedule``) and ``join_schedules`` (``optax.join_schedules``:
  each later schedule sees the steps counted from its own boundary).

Read next: ``classic.py`` (the optimizers that consume these).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import fgrad.numpy as fnp
from fgrad.optimizers.base import Schedule

__all__ = [
    "constant", "cosine_decay", "exponential_decay", "inverse_time_decay", "join_schedules",
    "make_schedule", "one_cycle", "piecewise_constant", "polynomial_decay", "warmup_cosine",
]

# --- JAX's schedules ---------------------------------------------------------------------


def constant(step_size: Any) -> Schedule:
    """The schedule that is ``step_size`` at every step.

    >>> constant(0.1)(1000)
    0.1
    """

    def schedule(i: Any) -> Any:
        return step_size

    return schedule


def exponential_decay(step_size: Any, decay_steps: Any, decay_rate: Any) -> Schedule:
    """``step_size * decay_rate ** (i / decay_steps)`` (smooth, no staircase).

    >>> exponential_decay(1.0, 10, 0.5)(20)
    0.25
    """

    def schedule(i: Any) -> Any:
        return step_size * decay_rate ** (i / decay_steps)

    return schedule


def inverse_time_decay(step_size: Any, decay_steps: Any, decay_rate: Any,
                       staircase: bool = False) -> Schedule:  # fmt: skip
    """``step_size / (1 + decay_rate * i / decay_steps)``; ``staircase`` floors the ratio.

    >>> inverse_time_decay(1.0, 10, 1.0)(10)
    0.5
    """
    if staircase:

        def schedule(i: Any) -> Any:
            return step_size / (1 + decay_rate * fnp.floor(i / decay_steps))

    else:

        def schedule(i: Any) -> Any:
            return step_size / (1 + decay_rate * i / decay_steps)

    return schedule


def polynomial_decay(step_size: Any, decay_steps: Any, final_step_size: Any,
                     power: Any = 1.0) -> Schedule:  # fmt: skip
    """From ``step_size`` to ``final_step_size`` over ``decay_steps``, then constant.

    ``(1 - min(i, decay_steps) / decay_steps) ** power * (step_size - final) + final``.

    >>> float(polynomial_decay(1.0, 10, 0.0)(5))
    0.5
    """

    def schedule(step_num: Any) -> Any:
        step_num = fnp.minimum(step_num, decay_steps)
        step_mult = (1 - step_num / decay_steps) ** power
        return step_mult * (step_size - final_step_size) + final_step_size

    return schedule


def piecewise_constant(boundaries: Any, values: Any) -> Schedule:
    """``values[k]`` where ``k`` is the number of boundaries strictly below the step.

    Args:
      boundaries: 1-D sequence of step indices.
      values: 1-D sequence, one longer than ``boundaries``.

    Raises:
      ValueError: if either is not 1-D or the lengths do not fit (JAX's messages).

    >>> schedule = piecewise_constant([10, 20], [1.0, 0.1, 0.01])
    >>> [round(float(schedule(t)), 6) for t in (10, 11, 25)]
    [1.0, 0.1, 0.01]
    """
    boundaries = fnp.array(boundaries)
    values = fnp.array(values)
    if not boundaries.ndim == values.ndim == 1:
        raise ValueError("boundaries and values must be sequences")
    if not boundaries.shape[0] == values.shape[0] - 1:
        raise ValueError("boundaries length must be one shorter than values length")

    def schedule(i: Any) -> Any:
        return values[fnp.sum(i > boundaries)]

    return schedule


def make_schedule(scalar_or_schedule: Any) -> Schedule:
    """A callable is returned as is; a scalar (0-d) becomes ``constant(scalar)``.

    Raises:
      TypeError: for anything else (e.g. a vector), with its type as the message.
    """
    if callable(scalar_or_schedule):
        return scalar_or_schedule
    if fnp.ndim(scalar_or_schedule) == 0:
        return constant(scalar_or_schedule)
    raise TypeError(type(scalar_or_schedule))


# --- optax's schedules -------------------------------------------------------------------


def _as_float(x: Any) -> Any:
    # NOTE: optax turns Python ints into floats before the arithmetic, so a huge step
    # count cannot overflow int32 inside jit; we do the same to match its numbers.
    return float(x) if isinstance(x, int) and not isinstance(x, bool) else x


def cosine_decay(init_value: Any, decay_steps: int, alpha: Any = 0.0,
                 exponent: Any = 1.0) -> Schedule:  # fmt: skip
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    ``init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * t / T))) ** exponent + alpha)``
    with ``t = min(step, T)``: optax's ``cosine_decay_schedule``.

    Raises:
      ValueError: if ``decay_steps`` is not positive.

    >>> [round(float(cosine_decay(1.0, 10, alpha=0.1)(t)), 6) for t in (0, 5, 10, 99)]
    [1.0, 0.55, 0.1, 0.1]
    """
    if not decay_steps > 0:
        raise ValueError("The cosine_decay_schedule requires positive decay_steps, got "
                         f"decay_steps={decay_steps!r}.")  # fmt: skip
    decay_steps_f = _as_float(decay_steps)

    def schedule(count: Any) -> Any:
        count = fnp.minimum(_as_float(count), decay_steps_f)
        cosine = 0.5 * (1 + fnp.cos(fnp.pi * count / decay_steps_f))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def _linear_ramp(init_value: Any, end_value: Any, transition_steps: int) -> Schedule:
    # optax.linear_schedule (transition_begin=0): held at init_value if no steps.
    if transition_steps <= 0:
        return lambda count: init_value

    def schedule(count: Any) -> Any:
        count = fnp.clip(count, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * frac + end_value

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    Schedule ``k > 0`` is called with ``step - boundaries[k - 1]``, i.e. it counts from
    its own start, as in ``optax.join_schedules``. ``boundaries`` has one entry fewer
    than ``schedules``.

    >>> joined = join_schedules([constant(1.0), lambda t: 2.0 * t], [5])
    >>> float(joined(4)), float(joined(7))
    (1.0, 4.0)
    """

    def schedule(step: Any) -> Any:
        output = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            output = fnp.where(step < boundary, output, later(step - boundary))
        return output

    return schedule


def warmup_cosine(init_value: Any, peak_value: Any, warmup_steps: int, decay_steps: int,
                  end_value: Any = 0.0, exponent: Any = 1.0) -> Schedule:  # fmt: skip
    """Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    optax's ``warmup_cosine_decay_schedule``: ``decay_steps`` is the TOTAL length,
    warmup included, so the cosine phase lasts ``decay_steps - warmup_steps`` steps.

    Raises:
      ValueError: if ``decay_steps <= warmup_steps``.

    >>> schedule = warmup_cosine(0.0, 1.0, warmup_steps=10, decay_steps=30)
    >>> float(schedule(5)), float(schedule(10)), round(float(schedule(20)), 6)
    (0.5, 1.0, 0.5)
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [_linear_ramp(init_value, peak_value, warmup_steps),
         cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])  # fmt: skip


def one_cycle(transition_steps: int, peak_value: Any, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4) -> Schedule:  # fmt: skip
    """The (cosine) one-cycle policy of Smith & Topin, as ``optax.cosine_onecycle_schedule``.

    Cosine-interpolates from ``peak_value / div_factor`` up to ``peak_value`` over the
    first ``int(pct_start * transition_steps)`` steps, then down to
    ``peak_value / (div_factor * final_div_factor)`` at ``transition_steps``, where it
    stays. We pick the cosine variant (not optax's three-phase linear one) because it is
    the one PyTorch's ``OneCycleLR`` uses by default.

    Raises:
      ValueError: if ``transition_steps`` is not positive.

    >>> schedule = one_cycle(100, 1.0)
    >>> [round(float(schedule(t)), 6) for t in (0, 30, 100)]
    [0.04, 1.0, 4e-06]
    """
    if transition_steps <= 0:
        raise ValueError("A linear onecycle schedule was set with a non-positive "
                         "`transition_steps`")  # fmt: skip
    peak_at = int(pct_start * transition_steps)
    end_at = int(transition_steps)
    scales = [peak_value / div_factor, div_factor, 1.0 / (div_factor * final_div_factor)]

    def schedule(count: Any) -> Any:
        # NOTE: as optax, the three values are a cumulative product of scales, built at
        # call time as a (non-weak) array of the default float dtype.
        start, peak, final = fnp.cumprod(fnp.array(scales))
        out = fnp.where(end_at <= count, final, 0.0)
        for lo, hi, begin, end in [(0, peak_at, start, peak), (peak_at, end_at, peak, final)]:
            pct = (count - lo) / max(hi - lo, 1)
            value = end + (begin - end) / 2.0 * (fnp.cos(math.pi * pct) + 1)
            out = out + fnp.where((lo <= count) & (count < hi), value, 0.0)
        return out

    return schedule
