"""fgrad's own gemm routine against BLAS, numpy and JAX: the measurements behind ``use_for``.

For each product, four jitted/library calls in one process, one thread each:

    own    fgrad ``jit(a @ b)`` with the product forced onto ``gemm.py``'s routine
    blas   the same with the product forced onto scipy's BLAS (OpenBLAS)
    numpy  ``a @ b`` (numpy's bundled BLAS)
    jax    ``jax.jit(a @ b)`` (XLA)

and which of the two fgrad paths ``gemm.use_for`` picks by default. Run it from the
repository root (it restarts itself with one thread per library):

    python bench/gemm.py              # the grid (about a minute)
    python bench/gemm.py --quick      # a few shapes
    python bench/gemm.py --dtype float64
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_jit import best_of, thread_env  # noqa: E402

# (form, m, k, n): nn is a @ b, tn is a.T @ b (a stored k x m)
MLP = [("nn", 128, 784, 512), ("nn", 128, 512, 512), ("tn", 784, 128, 512),
       ("tn", 512, 128, 512), ("nn", 128, 512, 10), ("tn", 512, 128, 10)]
# the stride-1 CNN of bench/cpu_jit.py (e): im2col products, their gradients, the dense layer
CNN = [("nn", 50176, 9, 16), ("nn", 50176, 144, 32), ("tn", 144, 50176, 32),
       ("nn", 50176, 32, 144), ("nn", 64, 25088, 10), ("tn", 25088, 64, 10)]
EDGES = [("nn", 64, 64, 64), ("nn", 32, 128, 128), ("nn", 128, 128, 128), ("nn", 500, 300, 200),
         ("nn", 512, 2048, 10), ("nn", 1000, 100, 20), ("tn", 1000, 100, 20),
         ("nn", 2304, 144, 32), ("nn", 10816, 9, 16), ("nn", 512, 1024, 1000),
         ("nn", 1024, 1024, 1024), ("nn", 2048, 2048, 2048), ("tn", 4096, 128, 4096)]
GRID = [("nn", m, k, n) for m in (64, 256) for k in (128, 1024) for n in (64, 512, 1000)]


def operands(form: str, m: int, k: int, n: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(m + k + n)
    a = rng.normal(size=(m, k) if form == "nn" else (k, m)).astype(dtype)
    return a, rng.normal(size=(k, n)).astype(dtype)


def product(form: str) -> Callable[[Any, Any], Any]:
    return (lambda a, b: a @ b) if form == "nn" else (lambda a, b: a.T @ b)


def fgrad_with(own: bool, form: str, a: np.ndarray, b: np.ndarray) -> Callable[..., Any]:
    """fgrad's jitted product, compiled (now) while ``use_for`` answers ``own`` for it."""
    import fgrad
    from fgrad.lowering.cpu_llvm import gemm
    default = gemm.use_for
    gemm.use_for = gemm.can_run if own else (lambda *args: False)
    try:
        f = fgrad.jit(product(form))  # a fresh function: its own compile
        f(a, b)
        return f
    finally:
        gemm.use_for = default


def run(opts: Any) -> None:
    import fgrad
    import jax
    from fgrad.lowering.cpu_llvm import gemm
    dtype = np.dtype(opts.dtype)
    if dtype == np.float64:
        fgrad.config.update("jax_enable_x64", True)
        jax.config.update("jax_enable_x64", True)
    print(f"{dtype}, one thread; AVX-512: {gemm.host_supported()}; times in us")
    print(f"{'product':>26s} {'own':>9s} {'blas':>9s} {'numpy':>9s} {'jax':>9s}  own/blas "
          f" own/jax  default")
    shapes = MLP + CNN[:3] if opts.quick else MLP + CNN + EDGES + GRID
    for form, m, k, n in shapes:
        a, b = operands(form, m, k, n, dtype)
        fns: dict[str, Callable[[], Any]] = {}
        for name, own in (("own", True), ("blas", False)):
            fns[name] = lambda f=fgrad_with(own, form, a, b): f(a, b)
        fns["numpy"] = (lambda: a @ b) if form == "nn" else (lambda: a.T @ b)
        jf, ja, jb = jax.jit(product(form)), jax.device_put(a), jax.device_put(b)
        fns["jax"] = lambda: jf(ja, jb).block_until_ready()
        np.testing.assert_allclose(np.asarray(fns["own"]()), np.asarray(fns["jax"]()),
                                   rtol=1e-3, atol=1e-2 * np.sqrt(k))
        work = m * k * n
        t = best_of(fns, 5, max(1, int(2e8 // max(work, 1) // 10) or 1))
        us = {name: 1e6 * v for name, v in t.items()}
        picked = "own" if gemm.use_for(dtype, m, n, k, form == "tn", False) else "blas"
        print(f"{form} {m:>5d} x {k:>5d} x {n:>5d}   " + " ".join(
            f"{us[x]:9.1f}" for x in ("own", "blas", "numpy", "jax"))
            + f"  {t['own'] / t['blas']:7.2f}  {t['own'] / t['jax']:7.2f}  {picked}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the MLP's products and 3 more")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        run(opts)
        return
    core = sorted(os.sched_getaffinity(0))[:1]
    subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=thread_env(1),
                   check=True, preexec_fn=lambda: os.sched_setaffinity(0, core))


if __name__ == "__main__":
    main()
