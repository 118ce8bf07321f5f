"""MNIST-1D: logistic regression, an MLP, a CNN and a GRU trained with fgrad (the README demo).

MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D",
ICML 2024) turns the ten digits into 1-D signals of length 40: 4000 training
and 1000 test examples, small enough to train on a laptop CPU in seconds, yet
hard enough to separate model families. The paper reports test accuracies of
32% (logistic regression), 68% (MLP), 94% (CNN) and 91% (GRU): the models
with the right inductive bias (translation invariance, recurrence) win.

This script trains the paper's four models (its ``models.py``, with PyTorch's
default initialization) and prints their test accuracy next to the published
numbers. ``--recipe paper`` is the recipe of the paper's ``train.py``: Adam,
learning rate 1e-2, batch 100, 8000 steps (with minibatches reshuffled every
epoch, which the paper does not do). It gives what the authors' code
gives today (mean of 3 seeds: 31/66/93/91%); the MLP falls short of the
published 68%, in the authors' own notebooks too. The default ``--recipe
tuned`` adds three standard regularizers: a cosine learning-rate decay and
decoupled weight decay 0.1 (AdamW) for every model, and dropout of 20% of the
MLP's hidden units. It lands within a point of, or above, every published
number (3 seeds: 32.6/73.3/93.3/92.2%).

It shows fgrad's training kit: ``fgrad.data`` (MNIST-1D generated offline and
cached; minibatches shuffled by ``fgrad.random`` keys, so a run is
reproducible from its seed); ``fgrad.nn_stax`` models, among them ``Conv1D``
and a bidirectional ``GRU`` (two ``lax.scan``s, one over the reversed
sequence; note stax's quirk: ``Dropout(rate)`` takes the probability of
KEEPING a unit); ``value_and_grad``, ``fgrad.optimizers``, and ``fgrad.jit``,
which compiles each training step once (``--backend cpu``, the default: fused
kernels compiled by LLVM) and reuses it for every step.

Run:  python examples/mnist1d.py              # all four models, about a minute
      python examples/mnist1d.py --seeds 3    # mean and std over 3 seeds
      python examples/mnist1d.py --quick      # 500 steps, for tests
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The models are tiny (batch 100, width <= 125): a multi-threaded BLAS spends more time
# synchronizing its threads than multiplying, badly so on a busy machine. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# This file shares its name with the `mnist1d` package that generates the data; drop the
# script's own folder from sys.path so that `import mnist1d` finds the package, not this file.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import fgrad  # noqa: E402
import fgrad.numpy as fnp  # noqa: E402
from fgrad import data, optimizers, random  # noqa: E402
from fgrad import nn_stax as stax  # noqa: E402
from fgrad.nn import losses  # noqa: E402

PUBLISHED = {"logistic": 32.0, "mlp": 68.0, "cnn": 94.0, "gru": 91.0}  # test accuracy, %


def torch_init(fan_in: int):
    """PyTorch's default initializer of Linear, Conv1d and GRU weights and biases:
    uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)] (the paper's models use it)."""
    bound = fan_in ** -0.5
    return lambda key, shape, dtype=None: random.uniform(key, shape, dtype, -bound, bound)


def make_models(dropout: bool) -> dict[str, tuple]:
    """The paper's models, as ``(layer, input_shape)`` pairs."""
    def dense(n_out: int, fan_in: int) -> tuple:
        return stax.Dense(n_out, W_init=torch_init(fan_in), b_init=torch_init(fan_in))

    def conv(width: int, in_channels: int) -> tuple:  # Conv1d(in, 25, width, stride 2, pad 1)
        init = torch_init(in_channels * width)
        return stax.Conv1D(25, (width,), strides=(2,), padding=[(1, 1)], W_init=init, b_init=init)

    def gru() -> tuple:  # hidden size 6
        return stax.GRU(6, W_init=torch_init(6), U_init=torch_init(6), b_init=torch_init(6))
    drop = [stax.Dropout(0.8)] if dropout else []  # keep 80% of the units (stax's convention)
    reverse_time = stax.elementwise(fnp.flip, axis=1)
    return {
        "logistic": (dense(10, 40), (-1, 40)),
        # 40 -> 100 -> 100 (with a residual connection) -> 10
        "mlp": (stax.serial(dense(100, 40), stax.Relu, *drop,
                            stax.Residual(dense(100, 100), stax.Relu), *drop, dense(10, 100)),
                (-1, 40)),
        # lengths 40 -> 19 -> 10 -> 5, so 5 * 25 = 125 features for the classifier
        "cnn": (stax.serial(conv(5, 1), stax.Relu, conv(3, 25), stax.Relu, conv(3, 25), stax.Relu,
                            stax.Flatten, dense(10, 125)), (-1, 40, 1)),
        # bidirectional GRU: both directions' states at all 40 steps -> 480 -> 10
        "gru": (stax.serial(stax.FanOut(2),
                            stax.parallel(gru(), stax.serial(reverse_time, gru(), reverse_time)),
                            stax.FanInConcat(axis=-1), stax.Flatten, dense(10, 480)),
                (-1, 40, 1)),
    }


def train(name: str, model: tuple, splits: tuple, args: argparse.Namespace, seed: int) -> dict:
    """Train one model from one seed; returns its curves, final test accuracy and timings."""
    (init_fun, apply_fun), in_shape = model
    (x, y), (x_test, y_test) = splits
    x, x_test = x.reshape((-1, *in_shape[1:])), x_test.reshape((-1, *in_shape[1:]))
    init_key, data_key, dropout_key = random.split(random.key(seed), 3)
    _, params = init_fun(init_key, in_shape)
    if args.recipe == "paper":
        opt_init, opt_update, get_params = optimizers.adam(args.lr)
    else:
        opt_init, opt_update, get_params = optimizers.adamw(
            optimizers.cosine_decay(args.lr, args.steps), weight_decay=0.1)

    def loss_fn(params, xb, yb, rng):
        return losses.softmax_cross_entropy(apply_fun(params, xb, rng=rng), yb).mean()

    @fgrad.jit(backend=args.backend)
    def update(step, opt_state, xb, yb):
        rng = random.fold_in(dropout_key, step)  # a new dropout mask every step
        loss, grads = fgrad.value_and_grad(loss_fn)(get_params(opt_state), xb, yb, rng)
        return opt_update(step, grads, opt_state), loss

    @fgrad.jit(backend=args.backend)
    def evaluate(params, xb, yb):
        logits = apply_fun(params, xb, mode="eval")  # no dropout
        return losses.softmax_cross_entropy(logits, yb).mean(), losses.accuracy(logits, yb)

    history = {"step": [], "train_loss": [], "test_loss": [], "test_acc": []}
    train_set = data.Dataset(x, y)  # reshuffled every epoch, with the key fold_in(data_key, epoch)
    batches = (batch for epoch in itertools.count() for batch in train_set.batches(
        args.batch_size, key=random.fold_in(data_key, epoch), drop_last=True))
    opt_state, recent, step_seconds = opt_init(params), [], 0.0
    start = time.perf_counter()
    bar = tqdm(range(1, args.steps + 1), desc=f"{name:8s} seed {seed}", leave=False,
               mininterval=0.5, disable=args.no_progress)
    for step in bar:
        xb, yb = next(batches)
        tic = time.perf_counter()
        opt_state, loss = update(step - 1, opt_state, xb, yb)
        if step == 1:  # the first call traces and compiles the step
            compile_seconds = time.perf_counter() - tic
        else:
            step_seconds += time.perf_counter() - tic
        recent.append(loss)
        if step % args.eval_every == 0 or step == args.steps:
            test_loss, test_acc = evaluate(get_params(opt_state), x_test, y_test)
            for key, value in (("step", step), ("train_loss", float(np.mean(recent))),
                               ("test_loss", float(test_loss)),
                               ("test_acc", 100 * float(test_acc))):
                history[key].append(value)
            recent = []
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                            test_acc=f"{history['test_acc'][-1]:.1f}%")
    seconds = time.perf_counter() - start
    return dict(history, acc=history["test_acc"][-1], seconds=seconds,
                compile_seconds=compile_seconds,
                ms_per_step=1e3 * step_seconds / max(args.steps - 1, 1))


def plot(results: dict, path: str) -> None:
    """Training loss and test accuracy against steps, one line per model (mean over seeds)."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in results.items():
        steps = runs[0]["step"]
        line, = ax_loss.plot(steps, np.mean([r["train_loss"] for r in runs], 0), label=name)
        ax_loss.plot(steps, np.mean([r["test_loss"] for r in runs], 0), ls="--", c=line.get_color())
        ax_acc.plot(steps, np.mean([r["test_acc"] for r in runs], 0), c=line.get_color(),
                    label=f"{name} (published {PUBLISHED[name]:.0f}%)")
        ax_acc.axhline(PUBLISHED[name], c=line.get_color(), ls=":", lw=1)
    ax_loss.set(xlabel="step", ylabel="cross-entropy (solid: train, dashed: test)",
                yscale="log", title="loss")
    ax_acc.set(xlabel="step", ylabel="test accuracy (%)", title="MNIST-1D test accuracy")
    ax_loss.legend()
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", choices=list(PUBLISHED), default=list(PUBLISHED))
    p.add_argument("--recipe", choices=["tuned", "paper"], default="tuned",
                   help="paper: the paper's Adam recipe; tuned (default): + cosine decay, "
                        "weight decay 0.1, MLP dropout 0.2")
    p.add_argument("--seeds", type=int, default=1, help="runs per model (default 1)")
    p.add_argument("--seed", type=int, default=0, help="the first seed")
    p.add_argument("--steps", type=int, help="training steps (default 8000; --quick: 500)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--eval-every", type=int, help="steps between test evaluations")
    p.add_argument("--backend", default="cpu", help="jit backend: cpu (LLVM) or interpret")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--plot", default="mnist1d_curves.png", help="where to write the curves")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.steps = args.steps or (500 if args.quick else 8000)
    args.eval_every = args.eval_every or (50 if args.quick else 250)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    splits = data.load_mnist1d()
    results = {name: [] for name in args.models}
    for name, model in make_models(dropout=args.recipe == "tuned").items():
        for seed in range(args.seed, args.seed + args.seeds) if name in results else ():
            results[name].append(train(name, model, splits, args, seed))
    print(f"\nMNIST-1D test accuracy: {args.recipe} recipe, {args.steps} steps, batch "
          f"{args.batch_size}, lr {args.lr:g}, {args.seeds} seed(s), jit backend {args.backend!r}")
    print(f"{'model':10s} {'fgrad':>14s} {'published':>10s} {'train loss':>16s} "
          f"{'wall time':>10s} {'compile':>8s} {'per step':>9s}")
    for name, runs in results.items():
        mean = {key: np.mean([r[key] for r in runs])  # over the seeds
                for key in ("acc", "seconds", "compile_seconds", "ms_per_step")}
        accuracy = f"{mean['acc']:.1f}%" + (f" ± {np.std([r['acc'] for r in runs]):.1f}"
                                            if len(runs) > 1 else "")
        loss = (f"{np.mean([r['train_loss'][0] for r in runs]):.3f} -> "
                f"{np.mean([r['train_loss'][-1] for r in runs]):.3f}")
        print(f"{name:10s} {accuracy:>14s} {PUBLISHED[name]:>9.0f}% {loss:>16s} "
              f"{mean['seconds']:>9.1f}s {mean['compile_seconds']:>7.1f}s "
              f"{mean['ms_per_step']:>7.2f}ms")
    if args.plot:
        plot(results, args.plot)
        print(f"curves written to {args.plot}")
    return results


if __name__ == "__main__":
    main()
