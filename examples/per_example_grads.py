"""Per-example gradients with ``vmap(grad)``, and differentially private SGD built from them.

Ordinary training needs only the gradient of the batch's *mean* loss. Some
methods need every example's gradient on its own; the best known is DP-SGD
(Abadi et al., "Deep Learning with Differential Privacy", 2016), which bounds
how much any single training example can change the model:

1. compute each example's gradient ``g_i``;
2. clip it to norm at most ``C``: ``g_i * min(1, C / |g_i|)`` (the norm over all
   parameters together);
3. sum the clipped gradients, add Gaussian noise ``N(0, (sigma * C)^2)`` to every
   coordinate (drawn from an ``fgrad.random`` key), and divide by the batch size.

In fgrad, per-example gradients are one line: write the loss of ONE example,
take its ``grad``, and ``vmap`` it over the batch::

    grads = fgrad.vmap(fgrad.grad(example_loss), in_axes=(None, 0, 0))(params, xs, ys)

``in_axes=None`` marks the parameters as shared (they are not copied per
example); every leaf of ``grads`` gains a leading batch axis. The script
first checks this against a Python loop of ``grad`` calls (same numbers,
far fewer dispatches), then trains a small tanh MLP on scikit-learn's digits
with DP-SGD and, for comparison, with plain SGD, and plots both runs and the
per-example gradient norms against the clipping threshold. (Turning
``sigma`` into a privacy guarantee ``(epsilon, delta)`` needs a privacy
accountant, which is beyond this example.)

Run:  python examples/per_example_grads.py           # 40 epochs
      python examples/per_example_grads.py --quick   # 5 epochs, for tests
"""

from __future__ import annotations

import os

# Tiny matrices: one BLAS thread is faster than many (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import fgrad  # noqa: E402
import fgrad.numpy as fnp  # noqa: E402
from fgrad import data, optimizers, random  # noqa: E402
from fgrad import nn_stax as stax  # noqa: E402
from fgrad.nn import losses  # noqa: E402
from fgrad.tree_util import tree_flatten, tree_map, tree_unflatten  # noqa: E402

init_fun, apply_fun = stax.serial(stax.Dense(64), stax.Tanh, stax.Dense(10))


def example_loss(params, x, y):
    """The loss of ONE example: x has shape (64,), y is a scalar class index."""
    return losses.softmax_cross_entropy(apply_fun(params, x), y)


def batch_loss(params, xs, ys):
    return losses.softmax_cross_entropy(apply_fun(params, xs), ys).mean()


per_example_grads = fgrad.vmap(fgrad.grad(example_loss), in_axes=(None, 0, 0))


def private_grad(params, xs, ys, key, clip, sigma):
    """The DP-SGD gradient: clip every example's gradient to norm ``clip``, sum, add noise."""
    leaves, treedef = tree_flatten(per_example_grads(params, xs, ys))  # leaves: (batch, ...)
    batch = xs.shape[0]
    norms = fnp.sqrt(sum(fnp.sum(fnp.reshape(g, (batch, -1)) ** 2, axis=1) for g in leaves))
    scale = fnp.minimum(1.0, clip / (norms + 1e-12))  # 1 for small gradients, C/|g| for large
    noisy = []
    for g, k in zip(leaves, random.split(key, len(leaves))):
        clipped_sum = fnp.sum(g * fnp.reshape(scale, (batch,) + (1,) * (g.ndim - 1)), axis=0)
        noisy.append((clipped_sum + sigma * clip * random.normal(k, g.shape[1:])) / batch)
    return tree_unflatten(treedef, noisy), norms


def check_against_loop(params, xs, ys) -> float:
    """vmap(grad) gives the same gradients as a Python loop of grad calls; returns max |diff|."""
    tic = time.perf_counter()
    looped = [fgrad.grad(example_loss)(params, x, y) for x, y in zip(xs, ys)]
    loop_seconds = time.perf_counter() - tic
    stacked = tree_map(lambda *gs: np.stack(gs), *looped)
    tic = time.perf_counter()
    vmapped = per_example_grads(params, xs, ys)
    vmap_seconds = time.perf_counter() - tic
    diff = max(float(np.max(np.abs(np.asarray(a) - b)))
               for a, b in zip(tree_flatten(vmapped)[0], tree_flatten(stacked)[0]))
    print(f"{len(xs)} per-example gradients: Python loop of grad {loop_seconds:.3f} s, "
          f"vmap(grad) {vmap_seconds:.3f} s; max |difference| = {diff:.2e}")
    return diff


def train(private: bool, splits: tuple, args: argparse.Namespace) -> dict:
    (x, y), (x_test, y_test) = splits
    init_key, data_key, noise_key = random.split(random.key(args.seed), 3)
    _, params = init_fun(init_key, (-1, 64))
    opt_init, opt_update, get_params = optimizers.sgd(args.lr)

    @fgrad.jit(backend=args.backend)
    def update(step, opt_state, xs, ys):
        params = get_params(opt_state)
        if private:
            key = random.fold_in(noise_key, step)  # fresh noise every step
            grads, norms = private_grad(params, xs, ys, key, args.clip, args.sigma)
        else:
            grads, norms = fgrad.grad(batch_loss)(params, xs, ys), fnp.zeros(xs.shape[0])
        return opt_update(step, grads, opt_state), batch_loss(params, xs, ys), norms

    @fgrad.jit(backend=args.backend)
    def accuracy(params, xs, ys):
        return losses.accuracy(apply_fun(params, xs), ys)

    opt_state, step, train_set = opt_init(params), 0, data.Dataset(x, y)
    history = {"epoch": [], "train_loss": [], "test_acc": []}
    name = "DP-SGD" if private else "SGD"
    for epoch in tqdm(range(1, args.epochs + 1), desc=name, disable=args.no_progress):
        epoch_losses, norms = [], []
        for xs, ys in train_set.batches(args.batch_size, key=random.fold_in(data_key, epoch),
                                        drop_last=True):
            opt_state, loss, batch_norms = update(step, opt_state, xs, ys)
            epoch_losses.append(loss)
            norms.append(np.asarray(batch_norms))
            step += 1
        history.setdefault("norms_first", np.concatenate(norms))  # gradient norms, epoch 1
        history["norms_last"] = np.concatenate(norms)
        history["epoch"].append(epoch)
        history["train_loss"].append(float(np.mean(epoch_losses)))
        history["test_acc"].append(100 * float(accuracy(get_params(opt_state), x_test, y_test)))
    return history


def plot(runs: dict, clip: float, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, (ax_acc, ax_norm) = plt.subplots(1, 2, figsize=(11, 4))
    for name, h in runs.items():
        ax_acc.plot(h["epoch"], h["test_acc"], label=name)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="digits: SGD vs DP-SGD")
    ax_acc.legend()
    h = runs["DP-SGD"]
    bins = np.linspace(0, max(h["norms_first"].max(), h["norms_last"].max()), 40)
    ax_norm.hist(h["norms_first"], bins, alpha=0.6, label="first epoch")
    ax_norm.hist(h["norms_last"], bins, alpha=0.6, label="last epoch")
    ax_norm.axvline(clip, color="k", ls="--", label=f"clipping norm C = {clip:g}")
    ax_norm.set(xlabel="per-example gradient norm (before clipping)", ylabel="examples",
                title="DP-SGD: per-example gradient norms")
    ax_norm.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, help="training epochs (default 40; --quick: 5)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    p.add_argument("--clip", type=float, default=1.0, help="per-example gradient norm bound C")
    p.add_argument("--sigma", type=float, default=1.0, help="noise multiplier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu", help="jit backend: cpu (LLVM) or interpret")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--plot", default="dp_sgd.png", help="where to write the plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (5 if args.quick else 40)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    splits = data.load_digits(test_size=0.2)  # x: [N, 64] in [0, 1]
    (x, y), _ = splits
    _, params = init_fun(random.key(args.seed), (-1, 64))
    max_diff = check_against_loop(params, x[:32], y[:32])
    runs = {"SGD": train(False, splits, args), "DP-SGD": train(True, splits, args)}
    print(f"\ndigits, {args.epochs} epochs of batch {args.batch_size}, SGD lr {args.lr:g}; "
          f"DP-SGD with C = {args.clip:g}, sigma = {args.sigma:g}")
    for name, h in runs.items():
        print(f"{name:7s} train loss {h['train_loss'][0]:.3f} -> {h['train_loss'][-1]:.3f}, "
              f"test accuracy {h['test_acc'][-1]:.1f}%")
    clipped = np.mean(runs["DP-SGD"]["norms_last"] > args.clip)
    print(f"last epoch: {100 * clipped:.0f}% of the per-example gradients were clipped")
    if args.plot:
        plot(runs, args.clip, args.plot)
        print(f"plot written to {args.plot}")
    return dict(runs, max_diff=max_diff)


if __name__ == "__main__":
    main()
