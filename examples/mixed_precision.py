"""Mixed precision: one MLP trained in float32, float16 and bfloat16, with dynamic loss scaling.

Mixed-precision training (Micikevicius et al., "Mixed Precision Training",
ICLR 2018) computes the forward and backward passes in a 16-bit float type
while the optimizer keeps a float32 **master copy** of the parameters. On
hardware with 16-bit matrix units (GPU tensor cores, TPUs, CPUs with AMX)
that halves memory traffic and multiplies matmul throughput; the master copy
keeps the small updates ``lr * grad`` from vanishing when they are added to
much larger weights.

The two 16-bit formats spend their bits differently:

* **float16**: 5 exponent bits, 10 mantissa bits. Precise, but its range is
  narrow: the largest value is 65504 and below 6e-8 everything is zero. Many
  gradient entries of a trained network are smaller than that and
  **underflow** to zero. Hence **loss scaling**: multiply the loss by a large
  ``S`` before differentiating, so every gradient is ``S`` times larger while
  in float16, and divide by ``S`` in float32 before the update. Too large an
  ``S`` overflows to ``inf``; the **dynamic** scheme finds the largest safe
  ``S``: after ``N`` consecutive finite steps it doubles ``S``; when a
  gradient is not finite it skips that update (the parameters and Adam's
  moments stay as they were) and halves ``S``.
* **bfloat16**: 8 exponent bits, 7 mantissa bits. Less precise, but it has
  float32's exponent, hence float32's range (1e-38 to 3e38): gradients do not
  underflow any more than in float32, so **bfloat16 needs no loss scaling**.

This script trains the same MLP (64 -> 512 -> 512 -> 10 on scikit-learn's
8x8 digits) four ways: float32; bfloat16; float16 with dynamic loss scaling;
and float16 without it, to show what scaling prevents. It prints a table of
the test accuracy, the time per step and the share of gradient entries that
came out zero in 16 bits but not in float32 (measured on a fixed batch at
every evaluation), the loss-scale history, and writes the curves to
``mixed_precision.png``. Its conventions:

* the compute dtype is applied by casting the master parameters and the
  inputs inside the loss, so ``grad`` flows back through the casts to float32;
  the logits are cast back to float32 for the softmax and the loss (the usual
  recipe: reductions over many terms stay in float32);
* matrix products take 16-bit inputs and accumulate in float32
  (``preferred_element_type=float32``), as tensor cores and AMX do, then round
  the result to 16 bits; with fgrad's CPU backend this also means the product
  runs in BLAS's float32 ``sgemm`` rather than in a generic loop.

What to expect, honestly: on a CPU, 16-bit training is **not faster** here.
Common x86 CPUs have no 16-bit float arithmetic (AVX512-FP16 and AMX are
rare), so fgrad's CPU backend computes every 16-bit operation in float32
(float16 through LLVM's ``half`` type, which LLVM promotes to float32;
bfloat16 by widening its bits) and rounds each result back, and the matrix
products run in float32 after a conversion: the 16-bit runs pay for extra
conversions and save only memory.
(Measured on a 2-core AMD EPYC VM, full run: 3.5 ms per step in float32,
4.4 in float16, 4.7 in bfloat16.) The point of this example is the
numerics: all four runs reach the same test accuracy (98.3%); unscaled
float16 loses a growing share of its gradient entries to underflow (3.7% of
them by the end: the gradients shrink as the loss falls), scaled float16
none, and bfloat16 at most 0.001% (rounding, not range: with float32's
exponent it cannot underflow where float32 does not); the loss scale climbs from 2^15
to 2^28, where the first overflows occur. On this small problem Adam, which
divides each update by the gradient's running magnitude, trains even with
the lost entries; the lost share is what grows into stalled training on
larger models.

Run:  python examples/mixed_precision.py           # 1500 steps per run, under a minute
      python examples/mixed_precision.py --quick   # 150 steps per run, for tests
"""

from __future__ import annotations

import os

# Small matrices: one BLAS thread is faster than many (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import fgrad  # noqa: E402
import fgrad.numpy as fnp  # noqa: E402
from fgrad import data, optimizers, random  # noqa: E402
from fgrad import nn_stax as stax  # noqa: E402
from fgrad.nn import losses  # noqa: E402
from fgrad.tree_util import tree_leaves, tree_map  # noqa: E402


class Precision(NamedTuple):
    """How one run computes: its name, the compute dtype, and whether it scales the loss."""

    name: str
    dtype: Any
    loss_scaling: bool


PRECISIONS = [Precision("float32", fnp.float32, False),
              Precision("bfloat16", fnp.bfloat16, False),
              Precision("float16", fnp.float16, True),
              Precision("float16, no scaling", fnp.float16, False)]


# --- the model -----------------------------------------------------------------------------------


def MixedDense(out_dim: int) -> stax.Layer:
    """``stax.Dense`` whose product accumulates in float32 and is rounded to the input dtype."""
    init_fun, _ = stax.Dense(out_dim)

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        W, b = params
        product = fnp.dot(inputs, W, preferred_element_type=fnp.float32)
        return product.astype(inputs.dtype) + b
    return init_fun, apply_fun


def make_model(hidden: int) -> stax.Layer:
    return stax.serial(MixedDense(hidden), stax.Relu, MixedDense(hidden), stax.Relu,
                       MixedDense(10))


def cast(tree: Any, dtype: Any) -> Any:
    return tree_map(lambda x: x.astype(dtype), tree)


# --- dynamic loss scaling ------------------------------------------------------------------------


class LossScale(NamedTuple):
    """The state of dynamic loss scaling (a pytree: it passes through ``jit``).

    ``scale``: the current factor ``S``; ``good_steps``: finite steps since the
    last change of ``S``; ``skipped``: updates skipped so far (non-finite gradients).
    """

    scale: Any
    good_steps: Any
    skipped: Any

    @staticmethod
    def create(scale: float) -> LossScale:
        return LossScale(fnp.float32(scale), fnp.int32(0), fnp.int32(0))

    def adjust(self, finite: Any, growth_interval: int) -> LossScale:
        """Halve ``S`` after a non-finite gradient, double it after ``growth_interval``
        finite steps in a row."""
        grow = finite & (self.good_steps + 1 >= growth_interval)
        scale = fnp.where(finite, fnp.where(grow, self.scale * 2, self.scale),
                          fnp.maximum(self.scale / 2, 1.0))
        good_steps = fnp.where(finite & ~grow, self.good_steps + 1, 0)
        return LossScale(scale, good_steps, self.skipped + (~finite).astype(fnp.int32))


def all_finite(tree: Any) -> Any:
    """A boolean scalar: no leaf of ``tree`` holds an inf or a NaN."""
    return fnp.all(fnp.stack([fnp.all(fnp.isfinite(x)) for x in tree_leaves(tree)]))


# --- one run -------------------------------------------------------------------------------------


def train(precision: Precision, splits: tuple, args: argparse.Namespace) -> dict:
    """Train the MLP in one precision; returns its curves, loss-scale history and timings."""
    (x, y), (x_test, y_test) = splits
    init_key, data_key = random.split(random.key(args.seed))
    init_fun, apply_fun = make_model(args.hidden)
    _, params = init_fun(init_key, (-1, x.shape[1]))  # float32: the master copy
    opt_init, opt_update, get_params = optimizers.adam(args.lr)
    dtype, growth = precision.dtype, args.growth_interval

    def logits_fn(params: Any, xb: Any, compute_dtype: Any) -> Any:
        return apply_fun(cast(params, compute_dtype), xb.astype(compute_dtype)).astype(fnp.float32)

    def unscaled_grads(params: Any, xb: Any, yb: Any, scale: Any, compute_dtype: Any) -> tuple:
        """The loss and its gradients, computed for the loss times ``scale``, then unscaled."""
        def scaled_loss(params: Any) -> Any:
            logits = logits_fn(params, xb, compute_dtype)
            return losses.softmax_cross_entropy(logits, yb).mean() * scale

        loss, grads = fgrad.value_and_grad(scaled_loss)(params)
        return loss / scale, tree_map(lambda g: g / scale, grads)  # unscaled in float32

    @fgrad.jit(backend=args.backend)
    def update(step, opt_state, loss_scale, xb, yb):
        loss, grads = unscaled_grads(get_params(opt_state), xb, yb, loss_scale.scale, dtype)
        finite = all_finite(grads)
        # Adam counts only the updates it made (its bias correction depends on the count).
        new_state = opt_update(step - loss_scale.skipped, grads, opt_state)
        opt_state = tree_map(lambda new, old: fnp.where(finite, new, old), new_state, opt_state)
        if precision.loss_scaling:
            loss_scale = loss_scale.adjust(finite, growth)
        return opt_state, loss_scale, loss, finite

    @fgrad.jit(backend=args.backend)
    def evaluate(params, x_test, y_test, xb, yb, scale):
        """Test accuracy, and the share of float32's nonzero gradient entries on the batch
        ``(xb, yb)`` that come out zero in this precision."""
        accuracy = losses.accuracy(logits_fn(params, x_test, dtype), y_test)
        _, reference = unscaled_grads(params, xb, yb, 1.0, fnp.float32)
        _, low = unscaled_grads(params, xb, yb, scale, dtype)
        pairs = list(zip(tree_leaves(reference), tree_leaves(low), strict=True))
        lost = sum(fnp.sum((r != 0) & (g == 0)) for r, g in pairs)
        return accuracy, lost / sum(fnp.sum(r != 0) for r, _ in pairs)

    history: dict[str, list] = {"step": [], "train_loss": [], "test_acc": [], "lost": [],
                                "scale": [], "skipped_at": []}
    train_set = data.Dataset(x, y)
    batches = (batch for epoch in itertools.count() for batch in train_set.batches(
        args.batch_size, key=random.fold_in(data_key, epoch), drop_last=True))
    probe = (x[:args.batch_size], y[:args.batch_size])  # a fixed batch for the lost gradients
    opt_state, recent, step_seconds = opt_init(params), [], 0.0
    loss_scale = LossScale.create(args.init_scale if precision.loss_scaling else 1.0)
    start = time.perf_counter()
    bar = tqdm(range(1, args.steps + 1), desc=f"{precision.name:20s}", leave=False,
               mininterval=0.5, disable=args.no_progress)
    for step in bar:
        xb, yb = next(batches)
        history["scale"].append(float(loss_scale.scale))  # the scale this step uses
        tic = time.perf_counter()
        opt_state, loss_scale, loss, finite = update(step - 1, opt_state, loss_scale, xb, yb)
        loss, finite = float(loss), bool(finite)  # wait for the step to finish
        if step == 1:  # the first call traces and compiles the step
            compile_seconds = time.perf_counter() - tic
        else:
            step_seconds += time.perf_counter() - tic
        if finite:
            recent.append(loss)
        else:
            history["skipped_at"].append(step)
        if step % args.eval_every == 0 or step == args.steps:
            test_acc, lost = evaluate(get_params(opt_state), x_test, y_test, *probe,
                                      loss_scale.scale)
            for key, value in (("step", step), ("train_loss", float(np.mean(recent or [np.nan]))),
                               ("test_acc", 100 * float(test_acc)), ("lost", 100 * float(lost))):
                history[key].append(value)
            recent = []
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                            test_acc=f"{history['test_acc'][-1]:.1f}%")
    return dict(history, acc=history["test_acc"][-1], seconds=time.perf_counter() - start,
                compile_seconds=compile_seconds, final_scale=float(loss_scale.scale),
                ms_per_step=1e3 * step_seconds / max(args.steps - 1, 1))


# --- reporting -----------------------------------------------------------------------------------


def power_of_two(x: float) -> str:
    return f"2^{np.log2(x):g}"


def scale_events(run: dict) -> list[str]:
    """The loss-scale history as readable events: 'step 12: 2^15 -> 2^14 (skipped)'."""
    events = []
    scales_after = run["scale"][1:] + [run["final_scale"]]
    for step, (before, after) in enumerate(zip(run["scale"], scales_after, strict=True), start=1):
        if before != after:
            skipped = " (overflow: update skipped)" if step in run["skipped_at"] else ""
            events.append(f"step {step}: {power_of_two(before)} -> {power_of_two(after)}{skipped}")
    return events


def plot(results: dict, path: str) -> None:
    """Loss, accuracy and lost gradients per precision; float16's loss scale."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, ((ax_loss, ax_acc), (ax_lost, ax_scale)) = plt.subplots(2, 2, figsize=(11, 8))
    for name, run in results.items():
        ax_loss.plot(run["step"], run["train_loss"], label=name)
        ax_acc.plot(run["step"], run["test_acc"], label=name)
        ax_lost.plot(run["step"], run["lost"], label=name)
    ax_loss.set(xlabel="step", ylabel="cross-entropy", yscale="log",
                title="training loss (the lines overlap)")
    ax_acc.set(xlabel="step", ylabel="test accuracy (%)", title="digits test accuracy")
    ax_lost.set(xlabel="step", ylabel="% of nonzero float32 entries",
                title="gradient entries lost (zero in 16 bits, not in float32)")
    run = results["float16"]
    ax_scale.step(range(1, len(run["scale"]) + 1), np.log2(run["scale"]), where="post",
                  label="log2(loss scale)")
    skipped = np.array(run["skipped_at"], dtype=int)
    ax_scale.plot(skipped, np.log2(np.array(run["scale"])[skipped - 1]), "rx",
                  label=f"skipped updates ({len(skipped)})")
    ax_scale.set(xlabel="step", ylabel="log2(S)", title="float16: dynamic loss scale S")
    for ax in (ax_loss, ax_acc, ax_lost, ax_scale):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, help="training steps per run (default 1500; --quick: 150)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, help="width of the hidden layers (default 512; "
                                              "--quick: 256)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--init-scale", type=float, default=2.0 ** 15,
                   help="float16's initial loss scale (default 2^15)")
    p.add_argument("--growth-interval", type=int,
                   help="finite steps before the scale doubles (default 100; --quick: 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, help="steps between test evaluations")
    p.add_argument("--backend", default="cpu", help="jit backend: cpu (LLVM) or interpret")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--plot", default="mixed_precision.png", help="where to write the curves")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.steps = args.steps or (150 if args.quick else 1500)
    args.hidden = args.hidden or (256 if args.quick else 512)
    args.growth_interval = args.growth_interval or (20 if args.quick else 100)
    args.eval_every = args.eval_every or (25 if args.quick else 100)
    if args.init_scale < 1:
        p.error("--init-scale must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    splits = data.load_digits(test_size=0.2)
    results = {precision.name: train(precision, splits, args) for precision in PRECISIONS}
    print(f"\nMLP 64-{args.hidden}-{args.hidden}-10 on digits: {args.steps} steps of "
          f"{args.batch_size}, Adam lr {args.lr:g}, jit backend {args.backend!r}")
    print(f"{'precision':20s} {'test acc':>9s} {'train loss':>11s} {'per step':>9s} "
          f"{'compile':>8s} {'skipped':>8s} {'final scale':>12s} {'grads lost':>11s}")
    for name, run in results.items():
        print(f"{name:20s} {run['acc']:>8.1f}% {run['train_loss'][-1]:>11.4f} "
              f"{run['ms_per_step']:>7.2f}ms {run['compile_seconds']:>7.1f}s "
              f"{len(run['skipped_at']):>8d} {power_of_two(run['final_scale']):>12s} "
              f"{run['lost'][-1]:>10.3f}%")
    events = scale_events(results["float16"])
    shown = events if len(events) <= 12 else events[:6] + ["..."] + events[-5:]
    print(f"float16 loss scale, initial {power_of_two(args.init_scale)}, doubled after "
          f"{args.growth_interval} finite steps ({len(events)} changes):\n  " + "\n  ".join(shown))
    print("'grads lost': nonzero float32 gradient entries that are zero in the run's "
          "precision (a fixed batch, last evaluation)")
    if args.plot:
        plot(results, args.plot)
        print(f"curves written to {args.plot}")
    return results


if __name__ == "__main__":
    main()
