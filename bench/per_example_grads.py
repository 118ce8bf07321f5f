"""Per-example gradients: ``vmap(grad(loss), in_axes=(None, 0, 0))`` against one batched gradient.

The issue's claim: per-example gradients of an MLP cost about what one batched
gradient costs, because ``vmap`` turns the B small backward passes into the
same few big array operations (the weight gradient becomes a batched outer
product instead of one matrix product). Measured here for a 784-256-10 tanh
MLP with a softmax cross-entropy loss, batch 128, float32:

* ``batched``: ``grad`` of the mean loss over the batch (one gradient);
* ``per-example (vmap)``: ``vmap(grad(loss), in_axes=(None, 0, 0))`` (B gradients);
* ``per-example (loop)``: a Python loop of B calls of ``grad(loss)``;

each eager and under ``fgrad.jit`` (every registered backend that runs it),
next to JAX's ``jit`` of the same functions and JAX's eager vmap. Run:

    python bench/per_example_grads.py            # ~1-2 minutes
    python bench/per_example_grads.py --quick    # fewer repeats, loop over 16 examples

Timings are the best of several repeats (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any, Callable

import numpy as np

import fgrad
import fgrad.numpy as fnp
from fgrad.transforms.jit import available_backends


def best_time_ms(fn: Callable[[], Any], repeat: int, sync: Callable[[Any], Any] = lambda x: x
                 ) -> tuple[float, float]:
    """Best wall time and best CPU time (this process, all threads) of ``fn``, in ms.

    On a shared machine the CPU time is the steadier number for single-threaded
    numpy work; multi-threaded code (XLA, BLAS) shows more CPU than wall time.
    """
    sync(fn())  # warm up: traces, caches, compiles
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        sync(fn())
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall * 1e3, cpu * 1e3


def make_loss(np_like: Any) -> Callable[..., Any]:
    def loss(params: Any, x: Any, y: Any) -> Any:  # one example: x (784,), y one-hot (10,)
        (w1, b1), (w2, b2) = params
        h = np_like.tanh(x @ w1 + b1)
        logits = h @ w2 + b2
        shifted = logits - np_like.max(logits)
        return -np_like.sum(y * (shifted - np_like.log(np_like.sum(np_like.exp(shifted)))))
    return loss


def make_batch_loss(np_like: Any, vmap: Callable[..., Any]) -> Callable[..., Any]:
    loss = make_loss(np_like)
    return lambda params, xs, ys: np_like.mean(vmap(loss, in_axes=(None, 0, 0))(params, xs, ys))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    repeat = 3 if args.quick else 15
    batch = args.batch
    loop_n = 16 if args.quick else batch

    rng = np.random.RandomState(0)
    params_np = [(rng.randn(784, 256).astype(np.float32) * 0.05, np.zeros(256, np.float32)),
                 (rng.randn(256, 10).astype(np.float32) * 0.05, np.zeros(10, np.float32))]
    xs_np = rng.randn(batch, 784).astype(np.float32)
    ys_np = np.eye(10, dtype=np.float32)[rng.randint(0, 10, batch)]
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:  # the benchmark still runs without JAX
        jax = jnp = None
    print(f"machine: {platform.machine()}, python {platform.python_version()}, numpy "
          f"{np.__version__}, fgrad {fgrad.__version__}, jax "
          f"{getattr(jax, '__version__', 'not installed')}; MLP 784-256-10, batch {batch}, "
          "float32; best of", repeat)

    params = [(fnp.asarray(w), fnp.asarray(b)) for w, b in params_np]
    xs, ys = fnp.asarray(xs_np), fnp.asarray(ys_np)
    loss = make_loss(fnp)
    batched = fgrad.grad(make_batch_loss(fnp, fgrad.vmap))
    per_example = fgrad.vmap(fgrad.grad(loss), in_axes=(None, 0, 0))
    single = fgrad.grad(loss)

    def scaled(t: tuple[float, float]) -> tuple[float, float]:  # loop_n examples -> batch
        return t[0] * batch / loop_n, t[1] * batch / loop_n

    def loop(g: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: [g(params, xs[i], ys[i]) for i in range(loop_n)]

    rows: list[tuple[str, str, tuple[float, float]]] = []
    rows.append(("fgrad eager", "batched", best_time_ms(lambda: batched(params, xs, ys), repeat)))
    rows.append(("fgrad eager", "per-example (vmap)",
                 best_time_ms(lambda: per_example(params, xs, ys), repeat)))
    t = best_time_ms(loop(single), max(repeat // 2, 1))
    rows.append(("fgrad eager", "per-example (loop)", scaled(t)))
    for backend in available_backends():
        name = f"fgrad jit[{backend}]"
        try:
            jb = fgrad.jit(batched, backend=backend)
            jp = fgrad.jit(per_example, backend=backend)
            js = fgrad.jit(single, backend=backend)
            rows.append((name, "batched", best_time_ms(lambda: jb(params, xs, ys), repeat)))
            rows.append((name, "per-example (vmap)",
                         best_time_ms(lambda: jp(params, xs, ys), repeat)))
            t = best_time_ms(loop(js), max(repeat // 2, 1))
            rows.append((name, "per-example (loop)", scaled(t)))
        except Exception as e:  # a backend that cannot run this program yet
            print(f"  ({name} skipped: {type(e).__name__}: {str(e).splitlines()[0][:100]})")

    if jax is not None:
        params_j = jax.tree_util.tree_map(jnp.asarray, params_np)
        xs_j, ys_j = jnp.asarray(xs_np), jnp.asarray(ys_np)
        sync = jax.block_until_ready
        jloss = make_loss(jnp)
        j_batched = jax.grad(make_batch_loss(jnp, jax.vmap))
        j_per_example = jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0))
        rows.append(("jax eager", "per-example (vmap)",
                     best_time_ms(lambda: j_per_example(params_j, xs_j, ys_j), repeat, sync)))
        jb, jp, js = jax.jit(j_batched), jax.jit(j_per_example), jax.jit(jax.grad(jloss))
        rows.append(("jax jit", "batched", best_time_ms(lambda: jb(params_j, xs_j, ys_j),
                                                        repeat, sync)))
        rows.append(("jax jit", "per-example (vmap)",
                     best_time_ms(lambda: jp(params_j, xs_j, ys_j), repeat, sync)))
        t = best_time_ms(lambda: [js(params_j, xs_j[i], ys_j[i]) for i in range(loop_n)],
                         max(repeat // 2, 1), sync)
        rows.append(("jax jit", "per-example (loop)", scaled(t)))

    # Check the two fgrad answers agree before reporting their speed.
    pe = per_example(params, xs, ys)
    bg = batched(params, xs, ys)
    err = max(float(np.max(np.abs(np.asarray(a).mean(0) - np.asarray(b))))
              for a, b in zip(fgrad.tree_util.tree_leaves(pe), fgrad.tree_util.tree_leaves(bg)))
    print(f"max |mean of per-example grads - batched grad| = {err:.2e}")

    base = {who: t for who, what, t in rows if what == "batched"}
    print(f"\n{'':<22}{'':<22}{'wall ms':>10}{'/ batched':>11}{'cpu ms':>10}{'/ batched':>11}")
    for who, what, (wall, cpu) in rows:
        line = f"{who:<22}{what:<22}{wall:10.2f}"
        line += f"{wall / base[who][0]:11.2f}" if who in base else f"{'':>11}"
        line += f"{cpu:10.2f}"
        line += f"{cpu / base[who][1]:11.2f}" if who in base else ""
        print(line)
    if loop_n != batch:
        print(f"(loops timed over {loop_n} examples and scaled to {batch})")


if __name__ == "__main__":
    main()
