"""Eager speed: per-call overhead of fgrad.numpy on tiny arrays, and eager grad of a small MLP.

Prints, from one run on this machine: fgrad's time, numpy's, JAX's (eager, not
jitted) and HIPS autograd's where installed, with ratios. Run:

    python bench/eager.py            # full run (~1 minute)
    python bench/eager.py --quick    # fewer repetitions

Timings are the best of several repeats (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import platform
import timeit
from typing import Callable

import numpy as np

import fgrad
import fgrad.numpy as fnp


def best_time_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    fn()  # warm up (caches, first-call imports)
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def optional(module: str):  # type: ignore[no-untyped-def]
    try:
        return __import__(module, fromlist=["_"])
    except Exception:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    number, repeat = (2000, 3) if args.quick else (20000, 7)

    jax = optional("jax")
    jnp = optional("jax.numpy")
    ag = optional("autograd")
    anp = optional("autograd.numpy")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python "
          f"{platform.python_version()}, numpy {np.__version__}, fgrad {fgrad.__version__}, "
          f"jax {getattr(jax, '__version__', 'not installed')}")

    # --- (1) dispatch overhead on tiny arrays ---------------------------------------------
    xn = np.ones(3, np.float32)
    xf = fnp.asarray(xn)
    xj = jnp.asarray(xn) if jnp else None
    cases = [
        ("add(x, y)", lambda: np.add(xn, xn), lambda: fnp.add(xf, xf),
         (lambda: jnp.add(xj, xj)) if jnp else None),
        ("x * 2.0", lambda: xn * np.float32(2.0), lambda: xf * 2.0,
         (lambda: xj * 2.0) if jnp else None),
        ("sin(x)", lambda: np.sin(xn), lambda: fnp.sin(xf),
         (lambda: jnp.sin(xj)) if jnp else None),
        ("sum(x)", lambda: np.sum(xn), lambda: fnp.sum(xf),
         (lambda: jnp.sum(xj)) if jnp else None),
    ]
    print("\n(1) eager call on a float32[3] array (microseconds per call)")
    print(f"{'op':<12}{'numpy':>9}{'fgrad':>9}{'overhead':>10}{'jax':>9}{'fgrad/jax':>11}")
    for name, f_np, f_fg, f_jax in cases:
        t_np = best_time_us(f_np, number, repeat)
        t_fg = best_time_us(f_fg, number, repeat)
        t_jx = best_time_us(f_jax, number // 4, repeat) if f_jax else float("nan")
        print(f"{name:<12}{t_np:9.2f}{t_fg:9.2f}{t_fg - t_np:10.2f}{t_jx:9.2f}"
              f"{t_fg / t_jx:11.2f}")

    # --- (2) eager grad of a small MLP ------------------------------------------------------------
    rng = np.random.RandomState(0)
    sizes = [(16, 32), (32, 32), (32, 10)]
    params_np = [(rng.randn(m, n).astype(np.float32) * 0.1, np.zeros(n, np.float32))
                 for m, n in sizes]
    x_np = rng.randn(8, 16).astype(np.float32)

    def make_loss(np_like):  # type: ignore[no-untyped-def]
        def loss(params, x):
            h = x
            for w, b in params[:-1]:
                h = np_like.tanh(np_like.dot(h, w) + b)
            w, b = params[-1]
            return np_like.sum((np_like.dot(h, w) + b) ** 2)
        return loss

    n_grad = max(number // 100, 20)
    params_f = [(fnp.asarray(w), fnp.asarray(b)) for w, b in params_np]
    g_fg = fgrad.grad(make_loss(fnp))
    t_fg = best_time_us(lambda: g_fg(params_f, fnp.asarray(x_np)), n_grad, repeat)
    rows = [("fgrad", t_fg)]
    if ag is not None:
        g_ag = ag.grad(make_loss(anp))
        rows.append(("autograd", best_time_us(lambda: g_ag(params_np, x_np), n_grad, repeat)))
    if jax is not None:
        params_j = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params_np]
        g_jx = jax.grad(make_loss(jnp))
        xj2 = jnp.asarray(x_np)
        rows.append(("jax (eager)", best_time_us(
            lambda: jax.block_until_ready(g_jx(params_j, xj2)), max(n_grad // 4, 5), repeat)))
    print("\n(2) eager grad of a 3-layer tanh MLP (16-32-32-10, batch 8), microseconds per call")
    for name, t in rows:
        print(f"{name:<14}{t:10.1f}   fgrad/{name} = {t_fg / t:.2f}")


if __name__ == "__main__":
    main()
