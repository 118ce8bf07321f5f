"""A small convolutional network with batch normalization on scikit-learn's 8x8 digits.

The digits data set (1797 handwritten digits of 8x8 pixels, shipped inside
scikit-learn, so nothing is downloaded) is split 80/20 into training and test
sets. A two-layer CNN with batch normalization, trained with Adam for 30
epochs, reaches about 98-99% test accuracy in well under a minute.

What it shows:

* ``nn_stax.Conv`` (NHWC images, HWIO kernels), ``MaxPool``, ``Flatten``, ``Dense``;
* batch normalization WITH running statistics: ``BatchNormRunning`` inside
  ``serial_stateful``. A stateful model is ``apply_fun(params, state, x,
  mode=...) -> (outputs, new_state)``: ``params`` are trained by the optimizer,
  ``state`` (the running mean and variance) is threaded through the training
  steps by hand, and ``mode="eval"`` normalizes with the running averages, so
  a test prediction does not depend on the rest of its batch. (JAX's stax
  ``BatchNorm``, also in ``fgrad.nn_stax``, has no running statistics: it
  always normalizes with the current batch, even at test time.)
* ``value_and_grad(..., has_aux=True)`` to return the new state alongside the loss;
* ``fgrad.jit`` of the whole update (forward, backward, Adam);
* reproducible shuffling with ``fgrad.data.Dataset.batches(key=...)``.

Run:  python examples/digits_convnet.py           # 30 epochs
      python examples/digits_convnet.py --quick   # 3 epochs, for tests
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
from fgrad import data, optimizers, random  # noqa: E402
from fgrad import nn_stax as stax  # noqa: E402
from fgrad.nn import losses  # noqa: E402


def make_model() -> stax.StatefulLayer:
    """conv(16) - BN - relu - conv(32) - BN - relu - maxpool - dense(64) - relu - dense(10)."""
    return stax.serial_stateful(
        stax.Conv(16, (3, 3), padding="SAME"), stax.BatchNormRunning(axis=(0, 1, 2)), stax.Relu,
        stax.Conv(32, (3, 3), padding="SAME"), stax.BatchNormRunning(axis=(0, 1, 2)), stax.Relu,
        stax.MaxPool((2, 2), strides=(2, 2)),                        # 8x8 -> 4x4
        stax.Flatten, stax.Dense(64), stax.Relu, stax.Dense(10))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, help="training epochs (default 30; --quick: 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu", help="jit backend: cpu (LLVM) or interpret")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--plot", default="digits_curves.png", help="where to write the curves")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (3 if args.quick else 30)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    # Images as [N, 8, 8, 1] (NHWC) in [0, 1]; the 80/20 split is fixed by its own key.
    (x, y), (x_test, y_test) = data.load_digits(test_size=0.2, flatten=False)
    x, x_test = x[..., None], x_test[..., None]
    init_key, data_key = random.split(random.key(args.seed))
    init_fun, apply_fun = make_model()
    _, params, bn_state = init_fun(init_key, (-1, 8, 8, 1))
    opt_init, opt_update, get_params = optimizers.adam(args.lr)

    def loss_fn(params, bn_state, xb, yb):
        logits, new_state = apply_fun(params, bn_state, xb, mode="train")
        return losses.softmax_cross_entropy(logits, yb).mean(), (new_state, logits)

    @fgrad.jit(backend=args.backend)
    def update(step, opt_state, bn_state, xb, yb):
        (loss, (bn_state, logits)), grads = fgrad.value_and_grad(loss_fn, has_aux=True)(
            get_params(opt_state), bn_state, xb, yb)
        return opt_update(step, grads, opt_state), bn_state, loss, losses.accuracy(logits, yb)

    @fgrad.jit(backend=args.backend)
    def evaluate(params, bn_state, xb, yb):
        logits, _ = apply_fun(params, bn_state, xb, mode="eval")  # running statistics
        return losses.softmax_cross_entropy(logits, yb).mean(), losses.accuracy(logits, yb)

    train_set = data.Dataset(x, y)
    opt_state, step = opt_init(params), 0
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    start = time.perf_counter()
    bar = tqdm(range(1, args.epochs + 1), desc="epochs", disable=args.no_progress)
    for epoch in bar:
        epoch_losses, epoch_accs = [], []
        for xb, yb in train_set.batches(args.batch_size, key=random.fold_in(data_key, epoch),
                                        drop_last=True):
            opt_state, bn_state, loss, acc = update(step, opt_state, bn_state, xb, yb)
            epoch_losses.append(loss)
            epoch_accs.append(acc)
            step += 1
        test_loss, test_acc = evaluate(get_params(opt_state), bn_state, x_test, y_test)
        for key, value in (("epoch", epoch), ("train_loss", float(np.mean(epoch_losses))),
                           ("train_acc", 100 * float(np.mean(epoch_accs))),
                           ("test_loss", float(test_loss)), ("test_acc", 100 * float(test_acc))):
            history[key].append(value)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                        test_acc=f"{history['test_acc'][-1]:.1f}%")
    seconds = time.perf_counter() - start

    print(f"\ndigits CNN with BatchNormRunning: {args.epochs} epochs ({step} steps of "
          f"{args.batch_size}), Adam lr {args.lr:g}, {len(x)} train / {len(x_test)} test images")
    print(f"train loss {history['train_loss'][0]:.3f} -> {history['train_loss'][-1]:.3f}; "
          f"train accuracy (last epoch) {history['train_acc'][-1]:.1f}%; "
          f"test accuracy {history['test_acc'][-1]:.1f}%; wall time {seconds:.1f} s")
    if args.plot:
        plot(history, args.plot)
        print(f"curves written to {args.plot}")
    return dict(history, seconds=seconds)


def plot(history: dict, path: str) -> None:
    """Loss and accuracy per epoch, train and test."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(history["epoch"], history["train_loss"], label="train (running mean)")
    ax_loss.plot(history["epoch"], history["test_loss"], label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    ax_acc.plot(history["epoch"], history["train_acc"], label="train (running mean)")
    ax_acc.plot(history["epoch"], history["test_acc"], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="digits accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
