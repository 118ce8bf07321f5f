"""CPU jit speed: fgrad's LLVM backend against numpy and JAX (jit), measured in the same run.

Workloads: an elementwise chain on 1M floats (memory bound), a row softmax
(fused reduction), an MLP training step (gemm-bound, with the backward pass)
and a small CNN training step (im2col + gemm). Each line prints best-of-N
times and the ratios fgrad/numpy and fgrad/JAX (below 1.0: fgrad is faster).

    python bench/cpu_jit.py            # all workloads
    python bench/cpu_jit.py softmax    # one of them
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import numpy as np

import fgrad
import fgrad.lax as lax
import fgrad.nn  # noqa: F401
import fgrad.numpy as fnp

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # JAX is optional for the benchmark
    jax = None


def best_ms(fn: Callable[[], Any], repeat: int = 7, number: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best * 1e3


def block(x: Any) -> Any:
    return jax.block_until_ready(x) if jax is not None else x


def report(name: str, fg: float, npy: float | None, jx: float | None) -> None:
    cols = [f"{name:<28s} fgrad {fg:8.3f} ms"]
    if npy is not None:
        cols.append(f"numpy {npy:8.3f} ms  fgrad/numpy {fg / npy:5.2f}")
    if jx is not None:
        cols.append(f"jax {jx:8.3f} ms  fgrad/jax {fg / jx:5.2f}")
    print("  ".join(cols))


def elementwise_chain() -> None:
    x = np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)

    def f(np_like: Any) -> Callable[[Any], Any]:
        return lambda x: np_like.maximum(x * 2.0 + 1.0, 0.0) * x - 0.5 * x
    fg = fgrad.jit(f(fnp), backend="cpu")
    jx = jax.jit(f(jnp)) if jax else None
    report("elementwise chain (1M f32)", best_ms(lambda: fg(x)), best_ms(lambda: f(np)(x)),
           best_ms(lambda: block(jx(x))) if jx else None)


def softmax() -> None:
    x = np.random.default_rng(0).normal(size=(512, 1024)).astype(np.float32)

    def f(np_like: Any) -> Callable[[Any], Any]:
        def sm(x: Any) -> Any:
            e = np_like.exp(x - np_like.max(x, axis=1, keepdims=True))
            return e / np_like.sum(e, axis=1, keepdims=True)
        return sm
    fg = fgrad.jit(f(fnp), backend="cpu")
    jx = jax.jit(f(jnp)) if jax else None
    report("softmax (512x1024 f32)", best_ms(lambda: fg(x)), best_ms(lambda: f(np)(x)),
           best_ms(lambda: block(jx(x))) if jx else None)


def _mlp_params(rng: np.random.Generator, sizes: list[int]) -> list[tuple[Any, Any]]:
    return [(rng.normal(size=(a, b)).astype(np.float32) / np.sqrt(a), np.zeros(b, np.float32))
            for a, b in zip(sizes[:-1], sizes[1:])]


def mlp_step() -> None:
    rng = np.random.default_rng(0)
    params = _mlp_params(rng, [784, 256, 256, 10])
    x = rng.normal(size=(128, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=128)

    def make(np_like: Any, grad: Any, log_softmax: Any) -> Callable[..., Any]:
        def loss(params: Any, x: Any, y: Any) -> Any:
            h = x
            for w, b in params[:-1]:
                h = np_like.maximum(h @ w + b, 0.0)
            w, b = params[-1]
            logp = log_softmax(h @ w + b)
            return -np_like.mean(np_like.take_along_axis(logp, y[:, None], axis=1))

        def step(params: Any, x: Any, y: Any) -> Any:
            g = grad(loss)(params, x, y)
            return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(params, g)]
        return step

    fg = fgrad.jit(make(fnp, fgrad.grad, fgrad.nn.log_softmax), backend="cpu")
    jx = jax.jit(make(jnp, jax.grad, jax.nn.log_softmax)) if jax else None
    report("MLP step (784-256-256-10, b128)", best_ms(lambda: fg(params, x, y)), None,
           best_ms(lambda: block(jx(params, x, y))) if jx else None)


def cnn_step() -> None:
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(3, 3, 1, 16)).astype(np.float32) * 0.3
    w2 = rng.normal(size=(3, 3, 16, 32)).astype(np.float32) * 0.1
    wd = rng.normal(size=(7 * 7 * 32, 10)).astype(np.float32) * 0.01
    x = rng.normal(size=(64, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    dn = ("NHWC", "HWIO", "NHWC")

    def make(np_like: Any, lax_like: Any, grad: Any, log_softmax: Any) -> Callable[..., Any]:
        def loss(params: Any, x: Any, y: Any) -> Any:
            w1, w2, wd = params
            h = np_like.maximum(lax_like.conv_general_dilated(x, w1, (2, 2), "SAME",
                                                              dimension_numbers=dn), 0.0)
            h = np_like.maximum(lax_like.conv_general_dilated(h, w2, (2, 2), "SAME",
                                                              dimension_numbers=dn), 0.0)
            logp = log_softmax(h.reshape(h.shape[0], -1) @ wd)
            return -np_like.mean(np_like.take_along_axis(logp, y[:, None], axis=1))

        def step(params: Any, x: Any, y: Any) -> Any:
            return [p - 0.01 * g for p, g in zip(params, grad(loss)(params, x, y))]
        return step

    fg = fgrad.jit(make(fnp, lax, fgrad.grad, fgrad.nn.log_softmax), backend="cpu")
    jx = jax.jit(make(jnp, jax.lax, jax.grad, jax.nn.log_softmax)) if jax else None
    params = [w1, w2, wd]
    report("CNN step (2 conv + dense, b64)", best_ms(lambda: fg(params, x, y), number=2), None,
           best_ms(lambda: block(jx(params, x, y)), number=2) if jx else None)


WORKLOADS = {"elementwise": elementwise_chain, "softmax": softmax, "mlp": mlp_step,
             "cnn": cnn_step}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(WORKLOADS)
    for name in chosen:
        WORKLOADS[name]()
