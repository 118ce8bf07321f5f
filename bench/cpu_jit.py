"""CPU jit speed: fgrad's LLVM backend against JAX's jit (and numpy), side by side in one run.

The workloads are those of issue 4, each with its target (fgrad / JAX):

    (a) chain   an elementwise chain of 9 ops + a sum, on 1e6 and 1e7 float32:
                <= 1.0x JAX, and <= 1.5x one pass over memory (numpy ``x.sum()``)
    (b) mlp     MLP train step, 784-512-512-10, batch 128, relu, softmax cross-entropy,
                value_and_grad + SGD update in one jitted function: <= 1.0x JAX
    (c) compile jit compile time of (b), cold (first call minus a steady call): <= 0.5x JAX
    (d) dispatch per-call time of a jitted function on tiny inputs: <= 1.0x JAX
    (e) cnn     CNN train step: conv 1->16 3x3, conv 16->32 3x3, dense 10; 28x28 input,
                batch 64; both convolutions stride 2, then both stride 1: <= 1.0x JAX
    (f) rnn     tanh RNN with ``scan`` (hidden 128, 50 steps, batch 32), fwd + bwd: <= 1.0x JAX

Run it from the repository root:

    python bench/cpu_jit.py                  # every workload, one thread per framework
    python bench/cpu_jit.py --threads 1,2    # one thread, then two
    python bench/cpu_jit.py --quick cnn rnn  # fewer repeats, only these workloads

Thread counts must be fixed before numpy, scipy or JAX start their thread pools,
so each mode runs in a child process with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``XLA_FLAGS`` set and its CPU affinity restricted to
that many cores (XLA sizes its pools from the affinity mask). Times are the
best of several rounds in which the frameworks take turns, so a burst of load
from other processes hits both alike; the check at the start of each
workload compares fgrad's result with JAX's.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

CHILD_FLAG = "--child"


# --- timing -------------------------------------------------------------------------------------

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # set from --clock in the child process


def best_of(fns: dict[str, Callable[[], Any]], rounds: int, number: int) -> dict[str, float]:
    """Seconds per call of each function: best of ``rounds`` rounds of ``number`` calls,
    the functions taking turns within each round."""
    for fn in fns.values():
        fn()  # warm up (and compile)
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = clock()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (clock() - t) / number)
    return best


@dataclasses.dataclass
class Row:
    workload: str
    fgrad: float          # seconds
    jax: float | None
    other: dict[str, float]  # reference times (numpy, a memory pass)
    target: str
    met: bool | None
    unit: str = "ms"


def fmt(seconds: float, unit: str) -> str:
    return f"{seconds * (1e6 if unit == 'us' else 1e3):9.3f} {unit}"


def show(row: Row) -> Row:
    cols = [f"{row.workload:<34s} fgrad {fmt(row.fgrad, row.unit)}"]
    if row.jax is not None:
        cols.append(f"jax {fmt(row.jax, row.unit)}  fgrad/jax {row.fgrad / row.jax:6.2f}")
    for name, t in row.other.items():
        cols.append(f"{name} {fmt(t, row.unit)}  fgrad/{name} {row.fgrad / t:5.2f}")
    verdict = "" if row.met is None else ("  target met" if row.met else "  target NOT met")
    print("  ".join(cols) + f"  [{row.target}]{verdict}", flush=True)
    return row


def check(name: str, ours: Any, theirs: Any, rtol: float = 2e-3, atol: float = 1e-4) -> None:
    """fgrad's result equals JAX's (a benchmark of a wrong answer measures nothing)."""
    import jax
    a = [np.asarray(x) for x in jax.tree_util.tree_leaves(ours)]
    b = [np.asarray(x) for x in jax.tree_util.tree_leaves(theirs)]
    ok = len(a) == len(b) and all(
        x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b))
    if not ok:
        print(f"  WARNING: {name}: fgrad's result differs from JAX's", flush=True)


def f32(x: np.ndarray) -> np.ndarray:
    """float32, as every input here must be (a float64 input is converted on every call)."""
    return x.astype(np.float32)


# --- the workloads ------------------------------------------------------------------------------

def chain(np_like: Any) -> Callable[[Any], Any]:
    """Nine elementwise ops and a sum: one pass over ``x`` when fused."""
    def f(x: Any) -> Any:
        y = np_like.maximum(x * 2.0 + 1.0, 0.0) * x - 0.5 * np_like.abs(x)
        return np_like.sum(y * y + 1.0)
    return f


def bench_chain(opts: Any, fg: Any, jx: Any) -> list[Row]:
    return [chain_row(opts, fg, jx, n) for n in ([10 ** 6] if opts.quick else [10 ** 6, 10 ** 7])]


def chain_row(opts: Any, fg: Any, jx: Any, n: int) -> Row:
    import fgrad.numpy as fnp
    import jax.numpy as jnp
    x = np.random.default_rng(0).normal(size=n).astype(np.float32)
    f_fg, f_jx = fg.jit(chain(fnp), backend="cpu"), jx.jit(chain(jnp))
    xj = jnp.asarray(x)
    check("chain", f_fg(x), f_jx(xj), rtol=1e-4)
    t = best_of({"fgrad": lambda: f_fg(x), "jax": lambda: f_jx(xj).block_until_ready(),
                 "numpy": lambda: chain(np)(x), "x.sum()": lambda: x.sum()},
                *opts.reps(10 if n > 10 ** 6 else 20, 5))
    return show(Row(f"(a) chain + sum, {n:.0e} f32", t["fgrad"], t["jax"],
                    {"numpy": t["numpy"], "x.sum()": t["x.sum()"]},
                    "<= 1.0x jax, <= 1.5x x.sum()",
                    t["fgrad"] <= t["jax"] and t["fgrad"] <= 1.5 * t["x.sum()"]))


def mlp_loss(np_like: Any, log_softmax: Any) -> Callable[..., Any]:
    def loss(params: Any, x: Any, y: Any) -> Any:
        h = x
        for w, b in params[:-1]:
            h = np_like.maximum(h @ w + b, 0.0)
        w, b = params[-1]
        logp = log_softmax(h @ w + b)
        return -np_like.mean(np_like.take_along_axis(logp, y[:, None], axis=1))
    return loss


def sgd_step(loss: Callable[..., Any], value_and_grad: Any, lr: float = 0.01
             ) -> Callable[..., Any]:
    """One training step: the loss, and the parameters after an SGD update."""
    def step(params: Any, x: Any, y: Any) -> Any:
        value, grads = value_and_grad(loss)(params, x, y)
        return value, [sgd(p, g, lr) for p, g in zip(params, grads)]
    return step


def sgd(p: Any, g: Any, lr: float) -> Any:
    """``p - lr * g`` on a leaf or a (w, b) pair."""
    if isinstance(p, tuple):
        return tuple(a - lr * b for a, b in zip(p, g))
    return p - lr * g


def mlp_setup() -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [(f32(rng.normal(size=(a, b)) / np.sqrt(a)), np.zeros(b, np.float32))
              for a, b in zip(sizes[:-1], sizes[1:])]
    x = rng.normal(size=(128, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=128).astype(np.int32)
    return params, x, y


def mlp_steps(fg: Any, jx: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    import fgrad.nn
    import fgrad.numpy as fnp
    import jax.numpy as jnp
    return (sgd_step(mlp_loss(fnp, fgrad.nn.log_softmax), fg.value_and_grad),
            sgd_step(mlp_loss(jnp, jx.nn.log_softmax), jx.value_and_grad))


def bench_mlp(opts: Any, fg: Any, jx: Any) -> list[Row]:
    params, x, y = mlp_setup()
    step_fg, step_jx = mlp_steps(fg, jx)
    f_fg, f_jx = fg.jit(step_fg, backend="cpu"), jx.jit(step_jx)
    pj = jx.device_put(params)
    check("mlp", f_fg(params, x, y), f_jx(pj, x, y))
    t = best_of({"fgrad": lambda: f_fg(params, x, y),
                 "jax": lambda: jx.block_until_ready(f_jx(pj, x, y))}, *opts.reps(10, 5))
    return [show(Row("(b) MLP step 784-512-512-10, b128", t["fgrad"], t["jax"], {},
                     "<= 1.0x jax", t["fgrad"] <= t["jax"]))]


def cold_compile(make_jitted: Callable[[], Callable[[], Any]], tries: int) -> float:
    """Seconds of the first call above a steady call, for a freshly jitted function."""
    best = float("inf")
    for _ in range(tries):
        fn = make_jitted()
        first = _timed(fn)
        steady = min(_timed(fn) for _ in range(3))
        best = min(best, first - steady)
    return best


def _timed(fn: Callable[[], Any]) -> float:
    t = clock()
    fn()
    return clock() - t


def bench_compile(opts: Any, fg: Any, jx: Any) -> list[Row]:
    params, x, y = mlp_setup()
    pj = jx.device_put(params)

    def fresh_fg() -> Callable[[], Any]:
        f = fg.jit(mlp_steps(fg, jx)[0], backend="cpu")  # a new function: nothing cached
        return lambda: f(params, x, y)

    def fresh_jx() -> Callable[[], Any]:
        f = jx.jit(mlp_steps(fg, jx)[1])
        return lambda: jx.block_until_ready(f(pj, x, y))

    tries = 1 if opts.quick else 3
    t_fg, t_jx = cold_compile(fresh_fg, tries), cold_compile(fresh_jx, tries)
    row = show(Row("(c) compile time of (b)", t_fg, t_jx, {}, "<= 0.5x jax",
                   t_fg <= 0.5 * t_jx))
    print("    fgrad stages: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in
                                          compile_stages(fg, mlp_steps(fg, jx)[0],
                                                         (params, x, y)).items()), flush=True)
    return [row]


def compile_stages(fg: Any, step: Callable[..., Any], args: tuple[Any, ...]
                   ) -> dict[str, float]:
    """Where fgrad's compile time goes: trace, schedule, render, LLVM."""
    from fgrad.lowering.cpu_llvm import compile as cc
    from fgrad.lowering.cpu_llvm.program import render_program
    from fgrad.lowering.schedule import schedule
    times: dict[str, float] = {}
    t = time.perf_counter()
    closed = fg.jit(step, backend="cpu").trace(*args)[0]
    times["trace"] = time.perf_counter() - t
    t = time.perf_counter()
    program = schedule(closed)
    times["schedule"] = time.perf_counter() - t
    t = time.perf_counter()
    modules = render_program(program, "fgrad_entry_stages")
    times["render"] = time.perf_counter() - t
    times.update(cc.compile_modules(modules).timings)
    return times


def bench_dispatch(opts: Any, fg: Any, jx: Any) -> list[Row]:
    import jax.numpy as jnp

    def f(x: Any, y: Any) -> Any:
        return x * y + 1.0
    x = np.arange(3, dtype=np.float32)
    xj = jnp.asarray(x)
    f_fg, f_jx = fg.jit(f, backend="cpu"), jx.jit(f)
    t = best_of({"fgrad": lambda: f_fg(x, x), "jax": lambda: f_jx(xj, xj).block_until_ready(),
                 "numpy": lambda: f(x, x)}, *opts.reps(20, 2000))
    rows = [show(Row("(d) dispatch, x*y+1 on f32[3]", t["fgrad"], t["jax"],
                     {"numpy": t["numpy"]}, "<= 1.0x jax", t["fgrad"] <= t["jax"], unit="us"))]
    return rows + [dispatch_pytree(opts, fg, jx)]


def dispatch_pytree(opts: Any, fg: Any, jx: Any) -> Row:
    """Not one of the issue's targets, shown for what a training loop pays per call: a
    step counter (a Python int) and an optimizer-like state of 20 small arrays."""
    params = [(np.ones((4, 4), np.float32), np.ones(4, np.float32)) for _ in range(5)]
    state = (params, params)

    def step(i: Any, state: Any) -> Any:
        return i + 1, [(w * 0.9, b * 0.9) for w, b in state[0]], state[1]
    f_fg, f_jx = fg.jit(step, backend="cpu"), jx.jit(step)
    sj = jx.device_put(state)
    t = best_of({"fgrad": lambda: f_fg(3, state),
                 "jax": lambda: jx.block_until_ready(f_jx(3, sj))}, *opts.reps(20, 500))
    return show(Row("(d) dispatch, int + 20-array pytree", t["fgrad"], t["jax"], {},
                    "(shown, no target)", None, unit="us"))


def cnn_loss(np_like: Any, lax_like: Any, log_softmax: Any, stride: int) -> Callable[..., Any]:
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(params: Any, x: Any, y: Any) -> Any:
        w1, w2, wd = params
        h = x
        for w in (w1, w2):
            h = np_like.maximum(lax_like.conv_general_dilated(
                h, w, (stride, stride), "SAME", dimension_numbers=dn), 0.0)
        logp = log_softmax(h.reshape(h.shape[0], -1) @ wd)
        return -np_like.mean(np_like.take_along_axis(logp, y[:, None], axis=1))
    return loss


def bench_cnn(opts: Any, fg: Any, jx: Any) -> list[Row]:
    """The issue names no stride: stride 2 (28 -> 14 -> 7, the usual small CNN) and
    stride 1 (28x28 throughout: 9x the convolution work and a 25088 x 10 dense layer)."""
    return [cnn_row(opts, fg, jx, stride) for stride in (2, 1)]


def cnn_row(opts: Any, fg: Any, jx: Any, stride: int) -> Row:
    import fgrad.lax
    import fgrad.nn
    import fgrad.numpy as fnp
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    side = -(-(-(-28 // stride)) // stride)  # "SAME" padding, twice: ceil(ceil(28/s)/s)
    params = [rng.normal(size=(3, 3, 1, 16)).astype(np.float32) * 0.3,
              rng.normal(size=(3, 3, 16, 32)).astype(np.float32) * 0.1,
              rng.normal(size=(side * side * 32, 10)).astype(np.float32) * 0.01]
    x = rng.normal(size=(64, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=64).astype(np.int32)
    f_fg = fg.jit(sgd_step(cnn_loss(fnp, fgrad.lax, fgrad.nn.log_softmax, stride),
                           fg.value_and_grad), backend="cpu")
    f_jx = jx.jit(sgd_step(cnn_loss(jnp, jx.lax, jx.nn.log_softmax, stride),
                           jx.value_and_grad))
    pj = jx.device_put(params)
    check(f"cnn stride {stride}", f_fg(params, x, y), f_jx(pj, x, y))
    t = best_of({"fgrad": lambda: f_fg(params, x, y),
                 "jax": lambda: jx.block_until_ready(f_jx(pj, x, y))}, *opts.reps(10, 3))
    return show(Row(f"(e) CNN step 2 conv + dense, b64, s{stride}", t["fgrad"], t["jax"], {},
                    "<= 1.0x jax", t["fgrad"] <= t["jax"]))


def rnn_loss(np_like: Any, scan: Any) -> Callable[..., Any]:
    def loss(params: Any, xs: Any, h0: Any) -> Any:
        wx, wh, b, wo = params

        def cell(h: Any, x: Any) -> tuple[Any, Any]:
            h = np_like.tanh(x @ wx + h @ wh + b)
            return h, h
        _, hs = scan(cell, h0, xs)
        return np_like.mean((hs @ wo) ** 2)
    return loss


def bench_rnn(opts: Any, fg: Any, jx: Any) -> list[Row]:
    import fgrad.lax
    import fgrad.numpy as fnp
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    hidden, steps, batch, features = 128, 50, 32, 64
    params = [f32(rng.normal(size=(features, hidden)) / np.sqrt(features)),
              f32(rng.normal(size=(hidden, hidden)) / np.sqrt(hidden)),
              np.zeros(hidden, np.float32),
              f32(rng.normal(size=(hidden, 10)) / np.sqrt(hidden))]
    xs = rng.normal(size=(steps, batch, features)).astype(np.float32)
    h0 = np.zeros((batch, hidden), np.float32)
    f_fg = fg.jit(fg.value_and_grad(rnn_loss(fnp, fgrad.lax.scan)), backend="cpu")
    f_jx = jx.jit(jx.value_and_grad(rnn_loss(jnp, jx.lax.scan)))
    pj = jx.device_put(params)
    check("rnn", f_fg(params, xs, h0), f_jx(pj, xs, h0))
    t = best_of({"fgrad": lambda: f_fg(params, xs, h0),
                 "jax": lambda: jx.block_until_ready(f_jx(pj, xs, h0))}, *opts.reps(10, 5))
    return [show(Row("(f) RNN scan h128 T50 b32, fwd+bwd", t["fgrad"], t["jax"], {},
                     "<= 1.0x jax", t["fgrad"] <= t["jax"]))]


WORKLOADS: dict[str, Callable[[Any, Any, Any], list[Row]]] = {
    "chain": bench_chain, "mlp": bench_mlp, "compile": bench_compile,
    "dispatch": bench_dispatch, "cnn": bench_cnn, "rnn": bench_rnn}


# --- processes: one per thread mode -------------------------------------------------------------

def thread_env(n: int) -> dict[str, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
               MKL_NUM_THREADS=str(n), FGRAD_NUM_THREADS=str(n))
    if n == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            ).strip()
    return env


def run_child(opts: Any) -> None:
    import fgrad
    import jax
    global clock
    clock = CLOCKS[opts.clock]
    print(f"threads {opts.threads}, {opts.clock} clock: cores {sorted(os.sched_getaffinity(0))}, "
          f"numpy {np.__version__}, jax {jax.__version__}, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rows = [row for name in opts.workloads for row in WORKLOADS[name](opts, fgrad, jax)]
    targets = [r for r in rows if r.met is not None]
    met = sum(bool(r.met) for r in targets)
    print(f"targets met: {met} of {len(targets)}\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="*",
                        help=f"some of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--threads", default="1",
                        help="comma-separated thread counts, one child process each")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 1e6 only")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (all its threads): on a "
                        "busy machine, one thread per framework, CPU time leaves out the "
                        "time spent waiting for a core")
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    unknown = set(opts.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(WORKLOADS)}")
    opts.workloads = opts.workloads or list(WORKLOADS)
    opts.reps = lambda rounds, number: ((max(2, rounds // 4), max(1, number // 2))
                                        if opts.quick else (rounds, number))
    if opts.child:
        run_child(opts)
        return
    for n in (int(t) for t in opts.threads.split(",")):
        cores = sorted(os.sched_getaffinity(0))[:n]
        args = [sys.executable, __file__, CHILD_FLAG, "--threads", str(n), "--clock",
                opts.clock, *opts.workloads]
        if opts.quick:
            args.append("--quick")
        subprocess.run(args, env=thread_env(n), check=True,
                       preexec_fn=lambda cores=cores: os.sched_setaffinity(0, cores))


if __name__ == "__main__":
    main()
