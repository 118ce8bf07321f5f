"""GPU jit speed: fgrad's CUDA backend against JAX on the GPU and cupy, when a GPU exists.

The workloads are those of ``bench/cpu_jit.py`` (issue 4), run with
``jit(backend="cuda")``; the targets are issue 6's:

    (a) chain   elementwise chain + sum on 1e6 and 1e7 float32: >= 80% of the device's
                memory bandwidth (bytes read / time, against the peak from the device's
                memory clock and bus width); a cupy ElementwiseKernel + sum for reference
    (b) mlp     MLP train step 784-512-512-10, batch 128: <= 1.0x JAX on the GPU
    (e) cnn     CNN train step (2 conv + dense, batch 64): <= 1.0x JAX on the GPU
    (f) rnn     RNN with scan (hidden 128, 50 steps, batch 32), fwd + bwd: <= 1.0x JAX

fgrad's ``jit`` takes host (numpy) arguments for now: each call uploads its
inputs and downloads its outputs, and the times include those transfers (JAX's
inputs live on the device), so the ratios are upper bounds. JAX columns appear
only when JAX itself sees a GPU (``pip install "jax[cuda12]"``);
otherwise the rows compare with cupy or stand alone. Without a usable GPU (cupy
missing, or no device) the script says so and exits successfully: these numbers
mean nothing on a machine without one. Run from the repository root:

    python bench/gpu_jit.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_jit  # noqa: E402  (the shared workload definitions)


def best(fn: Callable[[], Any], sync: Callable[[], None], number: int, rounds: int) -> float:
    """Seconds per call, best of ``rounds`` (each ``number`` calls, the device synchronised)."""
    fn()
    sync()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def peak_bandwidth(cupy: Any) -> float:
    """Bytes per second the device's memory can move (clock x 2 (DDR) x bus width)."""
    attrs = cupy.cuda.runtime.getDeviceProperties(0)
    return attrs["memoryClockRate"] * 1e3 * 2 * attrs["memoryBusWidth"] / 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    opts = parser.parse_args()
    from fgrad.lowering.cuda.device import gpu_status
    status = gpu_status()
    if status is not None:
        print(f"gpu_jit: no usable CUDA GPU ({status}); nothing to measure.")
        return
    import cupy
    import fgrad
    import fgrad.lax
    import fgrad.nn
    import fgrad.numpy as fnp
    import jax
    import jax.numpy as jnp
    jax_gpu = any(d.platform == "gpu" for d in jax.devices())
    sync = cupy.cuda.Device(0).synchronize
    number, rounds = (3, 3) if opts.quick else (20, 7)
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}; "
          f"JAX on GPU: {jax_gpu}")

    # (a) elementwise chain + sum: bandwidth
    for n in (10 ** 6, 10 ** 7):
        x = np.random.default_rng(0).normal(size=n).astype(np.float32)
        f = fgrad.jit(cpu_jit.chain(fnp), backend="cuda")
        t = best(lambda: f(x), sync, number, rounds)
        x_dev = cupy.asarray(x)
        t_cupy = best(lambda: cpu_jit.chain(cupy)(x_dev), sync, number, rounds)
        share = 4 * n / t / peak_bandwidth(cupy)
        print(f"(a) chain + sum {n:.0e}: fgrad {t * 1e3:.3f} ms ({share:.0%} of peak bandwidth; "
              f"target >= 80%), cupy (unfused) {t_cupy * 1e3:.3f} ms")

    # (b), (e), (f): training steps against JAX on the GPU when it has one
    params, x, y = cpu_jit.mlp_setup()
    step_fg, step_jx = cpu_jit.mlp_steps(fgrad, jax)
    cnn = cpu_jit.sgd_step(cpu_jit.cnn_loss(fnp, fgrad.lax, fgrad.nn.log_softmax),
                           fgrad.value_and_grad)
    cnn_jx = cpu_jit.sgd_step(cpu_jit.cnn_loss(jnp, jax.lax, jax.nn.log_softmax),
                              jax.value_and_grad)
    rng = np.random.default_rng(0)
    cnn_args = ([rng.normal(size=s).astype(np.float32) * 0.1
                 for s in ((3, 3, 1, 16), (3, 3, 16, 32), (7 * 7 * 32, 10))],
                rng.normal(size=(64, 28, 28, 1)).astype(np.float32),
                rng.integers(0, 10, size=64).astype(np.int32))
    rnn = fgrad.value_and_grad(cpu_jit.rnn_loss(fnp, fgrad.lax.scan))
    rnn_jx = jax.value_and_grad(cpu_jit.rnn_loss(jnp, jax.lax.scan))
    rnn_args = ([rng.normal(size=s).astype(np.float32) * 0.1
                 for s in ((64, 128), (128, 128), (128,), (128, 10))],
                rng.normal(size=(50, 32, 64)).astype(np.float32),
                np.zeros((32, 128), np.float32))
    for label, ours, theirs, args in (("(b) MLP step", step_fg, step_jx, (params, x, y)),
                                      ("(e) CNN step", cnn, cnn_jx, cnn_args),
                                      ("(f) RNN scan fwd+bwd", rnn, rnn_jx, rnn_args)):
        f = fgrad.jit(ours, backend="cuda")
        t = best(lambda: f(*args), sync, number, rounds)
        line = f"{label}: fgrad {t * 1e3:.3f} ms"
        if jax_gpu:
            g = jax.jit(theirs)
            jargs = jax.device_put(args)
            t_jx = best(lambda: jax.block_until_ready(g(*jargs)), sync, number, rounds)
            line += f", JAX {t_jx * 1e3:.3f} ms, ratio {t / t_jx:.2f} (target <= 1.0)"
        print(line)


if __name__ == "__main__":
    main()
