"""Eager speed: per-call overhead of fgrad.numpy on tiny arrays, and eager grad of a small MLP.

Prints, from one run on this machine: fgrad's time, numpy's, JAX's (eager, not
jitted) and HIPS autograd's where installed, with ratios; and, with autograd,
what single operations cost inside ``grad`` in either library. Run:

    python bench/eager.py            # full run (~1 minute)
    python bench/eager.py --quick    # fewer repetitions

Timings are CPU time (``time.process_time``), the best of several repeats in
which the libraries take turns: the machines are shared and noisy, and CPU time
does not count the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import platform
import time
import timeit
from typing import Callable, Sequence

import numpy as np

import fgrad
import fgrad.numpy as fnp

Timed = tuple[Callable[[], object], int]  # a function and how many calls make one sample


def best_times_us(cases: Sequence[Timed], repeat: int) -> list[float]:
    """CPU microseconds per call of each function, the best of ``repeat`` rounds.

    In each round every function is timed once, in turn, so a change in the
    machine's load during the run affects all of them alike.
    """
    for fn, _ in cases:
        fn()  # warm up (caches, first-call imports)
    best = [float("inf")] * len(cases)
    for _ in range(repeat):
        for i, (fn, number) in enumerate(cases):
            seconds = timeit.timeit(fn, number=number, timer=time.process_time)
            best[i] = min(best[i], seconds / number * 1e6)
    return best


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
    print("\n(1) eager call on a float32[3] array (CPU microseconds per call)")
    print(f"{'op':<12}{'numpy':>9}{'fgrad':>9}{'overhead':>10}{'jax':>9}{'fgrad/jax':>11}")
    for name, f_np, f_fg, f_jax in cases:
        timed = [(f_np, number), (f_fg, number)] + ([(f_jax, number // 4)] if f_jax else [])
        times = best_times_us(timed, repeat)
        t_np, t_fg = times[:2]
        t_jx = times[2] if f_jax else float("nan")
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
    names, timed = ["fgrad"], [(lambda: g_fg(params_f, fnp.asarray(x_np)), n_grad)]
    if ag is not None:
        g_ag = ag.grad(make_loss(anp))
        names.append("autograd")
        timed.append((lambda: g_ag(params_np, x_np), n_grad))
    if jax is not None:
        params_j = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params_np]
        g_jx = jax.grad(make_loss(jnp))
        xj2 = jnp.asarray(x_np)
        names.append("jax (eager)")
        timed.append((lambda: jax.block_until_ready(g_jx(params_j, xj2)), max(n_grad // 4, 5)))
    rows = list(zip(names, best_times_us(timed, repeat), strict=True))
    t_fg = rows[0][1]
    print("\n(2) eager grad of a 3-layer tanh MLP (16-32-32-10, batch 8), CPU microseconds "
          "per call")
    for name, t in rows:
        print(f"{name:<14}{t:10.1f}   fgrad/{name} = {t_fg / t:.2f}")

    if ag is not None:
        per_op_costs(anp, max(number // 200, 10), repeat)


# --- (3) what one operation costs inside grad ------------------------------------------------
# grad of a chain of CHAIN copies of one operation, less grad of the bare chain (just the
# final sum), over CHAIN: the eager cost of one operation under grad, forward and backward,
# without the fixed cost of a grad call.

CHAIN = 20


def per_op_costs(anp, number: int, repeat: int) -> None:  # type: ignore[no-untyped-def]
    import autograd

    x_np = np.full((8, 32), 0.5, np.float32)
    b_np, w_np = np.full(32, 0.01, np.float32), np.eye(32, dtype=np.float32)
    consts = {fnp: (fnp.asarray(b_np), fnp.asarray(w_np)), anp: (b_np, w_np)}
    ops: dict[str, Callable[..., object]] = {
        "tanh(x)": lambda L, x: L.tanh(x),
        "x + x": lambda L, x: x + x,
        "x * 1.5": lambda L, x: x * 1.5,
        "x + b, b const": lambda L, x: x + consts[L][0],
        "dot(x, w)": lambda L, x: L.dot(x, consts[L][1]),
    }

    def chain(np_like, op):  # type: ignore[no-untyped-def]
        def loss(x):  # type: ignore[no-untyped-def]
            for _ in range(CHAIN):
                x = op(np_like, x)
            return np_like.sum(x)
        return loss

    def grads(op):  # type: ignore[no-untyped-def]
        g_fg, g_ag = fgrad.grad(chain(fnp, op)), autograd.grad(chain(anp, op))
        x_fg = fnp.asarray(x_np)
        return [(lambda: g_fg(x_fg), number), (lambda: g_ag(x_np), number)]

    base_fg, base_ag = best_times_us(grads(lambda L, x: x), repeat)
    print(f"\n(3) one operation inside grad, on float32[8,32], CPU microseconds (grad of a "
          f"chain of {CHAIN},\n    less the chain's fixed cost: {base_fg:.0f} for fgrad, "
          f"{base_ag:.0f} for autograd)")
    print(f"{'op':<16}{'fgrad':>7}{'autograd':>10}{'ratio':>8}")
    for name, op in ops.items():
        t_fg, t_ag = best_times_us(grads(op), repeat)
        per_fg, per_ag = (t_fg - base_fg) / CHAIN, (t_ag - base_ag) / CHAIN
        print(f"{name:<16}{per_fg:7.1f}{per_ag:10.1f}{per_fg / per_ag:8.2f}")


if __name__ == "__main__":
    main()
