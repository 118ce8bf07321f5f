"""Every kernel the test suite's programs generate is valid CUDA C that fits the hardware.

No GPU is needed: NVRTC (the compiler cupy uses) turns the generated source
into PTX and ``ptxas`` assembles it for sm_80 and sm_90, reporting each
kernel's registers, shared memory, stack and spills.

The programs: every op-table record (each of its dtypes, plus float64 under
x64), the gradient of each differentiable one, and the random programs of
``test_cpu_backend.py`` with their gradients. All of their kernels are
rendered (the renderer must know every construct the scheduler emits); a
cover of them is compiled in CI: kernels chosen until every feature seen
anywhere (each op at each dtype, each cast, each statement and index form,
each launch plan) is in one, plus the largest kernels (register pressure).
Compiling every distinct kernel takes minutes here, so that runs with
``-m slow``.

The toolchain (NVRTC, ptxas) comes with the test extra from NVIDIA's pip
packages; a missing piece fails these tests, saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import op_table
import pytest
from conftest import enable_x64
from hypothesis import Phase, given, settings

import fgrad
import fgrad.numpy as fnp
from fgrad.core.dtypes import SUPPORTED_DTYPES, is_float
from fgrad.lowering.cuda import plan as planning
from fgrad.lowering.cuda import render, toolchain
from fgrad.lowering.kernel_ir import (
    ARITY,
    COMPARE,
    AccRef,
    Accumulate,
    Alu,
    Cast,
    Const,
    DefineAcc,
    Idx,
    IndexValue,
    Kernel,
    Load,
    Loop,
    Param,
    ScalarOp,
    Store,
    const,
    from_value,
    var,
)
from fgrad.lowering.schedule import LoweringError, schedule
from fgrad.tree_util import tree_leaves

ARCHS = ("sm_80", "sm_90")
LARGEST = 12          # the biggest kernels compiled besides the feature cover
BATCH = 400           # kernels per NVRTC / ptxas call in the exhaustive test


@pytest.fixture(scope="module", autouse=True)
def cuda_toolchain() -> None:
    # NVRTC, ptxas and nvcc come with the test extra (pip's nvidia-* 13.0 packages)
    assert toolchain.available(), f"CUDA toolchain incomplete: {toolchain.missing()}; " \
        'install the test extra: pip install -e ".[test]"'
    assert toolchain.nvcc_path() is not None, "no nvcc: install the test extra"


# --- the programs -------------------------------------------------------------------------------

def _float_sum(outs: Any) -> Any:
    leaves = [o for o in tree_leaves(outs) if is_float(o.dtype)]
    return sum(fnp.sum(o).astype(np.float32) for o in leaves) if leaves else None


def _record_functions() -> Iterator[tuple[str, bool, Callable[..., Any], list[Any]]]:
    """(label, x64, function, arguments) for each record, dtype and gradient."""
    for rec in op_table.all_records():
        for dtype in (*rec.dtypes, np.float64):
            x64 = np.dtype(dtype) == np.float64
            with enable_x64(x64):
                args = [a.value if a.kind == "const" else
                        np.zeros(a.shape, op_table.arg_dtype(a, dtype)) for a in rec.args]
            dyn = [i for i, a in enumerate(rec.args) if a.kind != "const"]

            def f(*xs: Any, rec: Any = rec, args: Any = args, dyn: Any = dyn) -> Any:
                full = list(args)
                for i, x in zip(dyn, xs, strict=True):
                    full[i] = x
                return rec.fn(*full)

            label = f"{rec.name}[{np.dtype(dtype).name}]"
            yield label, x64, f, [args[i] for i in dyn]
            wrt = tuple(k for k, i in enumerate(dyn) if rec.args[i].kind == "float")
            if rec.diff and wrt:
                yield label + "_grad", x64, fgrad.grad(
                    lambda *xs, f=f: _float_sum(f(*xs)), argnums=wrt), [args[i] for i in dyn]


def _random_programs() -> list[tuple[Callable[..., Any], list[np.ndarray]]]:
    from lowering.test_cpu_backend import programs  # the CPU backend's differential grammar
    found: list[Any] = []

    @settings(max_examples=60, derandomize=True, database=None, phases=[Phase.generate])
    @given(programs())
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


def _programs() -> Iterator[tuple[str, Any]]:
    for label, x64, fn, args in _record_functions():
        with enable_x64(x64):
            try:
                closed = fgrad.make_jaxpr(fn)(*args)
            except TypeError:
                continue  # e.g. the gradient of a function with no float output
            try:
                yield label, schedule(closed)
            except LoweringError:
                continue  # not compiled by any backend yet (test_cpu_op_table checks the error)
    for k, (fn, args) in enumerate(_random_programs()):
        yield f"random{k}", schedule(fgrad.make_jaxpr(fn)(*args))

        def loss(x: Any, v: Any, fn: Any = fn) -> Any:
            a, b = fn(x, v)
            return fnp.sum(fnp.tanh(a)) + fnp.sum(b * b) * 0.1

        yield f"random{k}_grad", schedule(
            fgrad.make_jaxpr(fgrad.grad(loss, argnums=(0, 1)))(*args))


@pytest.fixture(scope="module")
def kernels() -> dict[str, tuple[str, Kernel]]:
    """Every generated kernel, rendered: {source text (named K): (program label, kernel)}."""
    found: dict[str, tuple[str, Kernel]] = {}
    for label, program in _programs():
        for kernel in render.program_kernels(program.steps):
            # the program allocates every buffer as large as its kernels address it
            # (a reused temporary once shrank to an output's size: a heap overflow)
            for p in kernel.params:
                assert program.buffers[p.name].size == p.size, (label, kernel.name, p)
            found.setdefault(render.render_kernel(kernel, "K"), (label, kernel))
    return found


# --- which kernels to compile -------------------------------------------------------------------

def _features(kernel: Kernel) -> set[tuple[Any, ...]]:
    """What a kernel exercises in the renderer: its plan, statements, ops and dtypes."""
    p = planning.plan(kernel)
    out: set[tuple[Any, ...]] = {("plan", p.mode, min(len(p.run), 3))}
    for s, loops in planning.walk(kernel.body):
        if isinstance(s, Loop):
            out.add(("loop", s.parallel, min(len(loops), 3)))
        elif isinstance(s, Store):
            out.add(("store", s.value.dtype.name, s.op, s.mask is None, p.mode))
        elif isinstance(s, DefineAcc):
            out.add(("acc", s.op, s.dtype.name))
    for v in planning.values(kernel.body):
        if isinstance(v, Idx):
            out.add(("index", v.op))
        elif isinstance(v, Load):
            out.add(("load", v.dtype.name, v.mask is None))
        elif isinstance(v, Alu):
            arg = v.args[-1 if v.op is ScalarOp.WHERE else 0]
            out.add(("alu", v.op, arg.dtype.name, v.dtype.name))
        elif isinstance(v, Cast):
            out.add(("cast", v.x.dtype.name, v.dtype.name))
        elif isinstance(v, (IndexValue, Const)):
            out.add((type(v).__name__, v.dtype.name))
    return out


def _cover(kernels: dict[str, tuple[str, Kernel]]) -> list[tuple[str, Kernel]]:
    """Greedy: the kernel adding the most new features per byte, until all are covered;
    then the largest kernels."""
    items = [(text, label, k, _features(k)) for text, (label, k) in kernels.items()]
    wanted = set().union(*(f for *_, f in items))
    chosen: dict[str, tuple[str, Kernel]] = {}
    covered: set[Any] = set()
    while covered != wanted:
        text, label, k, f = max(items, key=lambda it: len(it[3] - covered) / (len(it[0]) + 2000))
        chosen[text] = (label, k)
        covered |= f
    for text, label, k, _ in sorted(items, key=lambda it: -len(it[0]))[:LARGEST]:
        chosen[text] = (label, k)
    return list(chosen.values())


def _compile_and_check(batch: list[tuple[str, Kernel]]) -> None:
    module = render.render_module([k for _, k in batch])
    labels = {ck.name: label for ck, (label, _) in zip(module.kernels, batch, strict=True)}
    for arch, found in toolchain.check_module(module.source, ARCHS).items():
        assert set(found) == set(labels), (arch, set(labels) - set(found))
        for name, r in found.items():
            where = f"{labels[name]}: {name} on {arch}: {r}"
            assert r.registers <= 255 and r.shared_bytes <= 48 * 1024, where
            assert r.spill_stores + r.spill_loads <= 256 and r.stack_bytes <= 1024, where


# --- tests --------------------------------------------------------------------------------------

def test_generated_kernels_render_compile_and_fit(kernels: dict[str, tuple[str, Kernel]]
                                                  ) -> None:
    assert len(kernels) > 1000  # the fixture rendered every record's kernels
    _compile_and_check(_cover(kernels))


@pytest.mark.slow
def test_every_generated_kernel_compiles(kernels: dict[str, tuple[str, Kernel]]) -> None:
    items = list(kernels.values())
    for start in range(0, len(items), BATCH):
        _compile_and_check(items[start:start + BATCH])


def _inputs(dtype: np.dtype) -> list[Load]:
    """Loads at ``i`` of a0..a2 (``dtype``), a bool a3 and an int32 a4 (8 elements each)."""
    return [Load(f"a{k}", var("i"), np.dtype(dt)) for k, dt in enumerate(
        [dtype] * 3 + [np.bool_, np.int32])]


def _operands(op: ScalarOp, loads: list[Load]) -> tuple[Load, ...]:
    return (loads[3], *loads[1:3]) if op is ScalarOp.WHERE else tuple(loads[:ARITY[op]])


def _alu(op: ScalarOp, loads: list[Load]) -> Alu:
    dtype = loads[0].dtype
    return Alu(op, _operands(op, loads), np.dtype(bool) if op in COMPARE else dtype)


def _kernel(name: str, loads: list[Load], values: list[Any], op: ScalarOp | None = None
            ) -> Kernel:
    """One loop over 8 elements storing each of ``values`` to an output of its own; with
    ``op``, a scatter (a serial loop of read-modify-writes at data-dependent indices)."""
    i = var("i")
    at = from_value(loads[4]) if op is not None else i
    params = [Param(x.buf, x.dtype, 8) for x in loads] + [
        Param(f"o{k}", v.dtype, 8, True) for k, v in enumerate(values)]
    body = tuple(Store(f"o{k}", at, v, op=op) for k, v in enumerate(values))
    return Kernel(name, tuple(params), (Loop("i", 8, body, parallel=op is None),))


def _op_kernel(op: ScalarOp, dtype: np.dtype, name: str) -> Kernel:
    loads = _inputs(dtype)
    return _kernel(name, loads, [_alu(op, loads)])


def test_every_op_dtype_and_cast_compiles() -> None:
    """The whole op table at every dtype it accepts, every cast and bit cast, every
    reduction, and every scatter (atomic at 4 and 8 bytes, serial otherwise), in one
    module of five kernels per dtype."""
    kernels = []
    for dtype in SUPPORTED_DTYPES:
        table = render.FLOAT_OPS if is_float(dtype) else \
            render.BOOL_OPS if dtype == np.bool_ else render.INT_OPS
        loads = _inputs(dtype)
        kernels += [
            _kernel(f"ops_{dtype.name}", loads, [_alu(op, loads) for op in table]),
            _kernel(f"casts_{dtype.name}", loads, [Cast(loads[0], d) for d in SUPPORTED_DTYPES]),
            _kernel(f"bitcasts_{dtype.name}", loads, [
                Alu(ScalarOp.BITCAST, (loads[0],), d) for d in SUPPORTED_DTYPES
                if d.itemsize == dtype.itemsize])]
        ops = [op for op in planning.ATOMIC_OPS if op in table and not (
            is_float(dtype) and op in (ScalarOp.AND, ScalarOp.OR))]
        kernels += [_kernel(f"scatter_{op.name}_{dtype.name}", loads, [loads[0]], op)
                    for op in ops]
        j, n = var("j"), planning.BLOCK_REDUCE_MIN
        kernels.append(Kernel(f"reduce_{dtype.name}", (
            Param("u", dtype, n), *(Param(f"o{op.name}", dtype, 1, True) for op in ops)), (
            *(DefineAcc(f"acc{op.name}", op, dtype) for op in ops),
            Loop("j", n, tuple(Accumulate(f"acc{op.name}", Load("u", j, dtype)) for op in ops)),
            *(Store(f"o{op.name}", const(0), AccRef(f"acc{op.name}", dtype)) for op in ops))))
    module = render.render_module(kernels)
    assert {k.mode for k in module.kernels} == {"atomic", "block", "serial", "thread"}
    for arch, found in toolchain.check_module(module.source, ARCHS).items():
        assert len(found) == len(kernels), arch


def test_a_broken_kernel_is_caught_with_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    program = schedule(fgrad.make_jaxpr(lambda x: fnp.exp(x) + 1.0)(np.ones(4, np.float32)))
    monkeypatch.setitem(render.FLOAT_OPS, ScalarOp.EXP, "no_such_function{f}({0})")
    source = render.render_program(program).source
    with pytest.raises(toolchain.CudaCompileError) as info:
        toolchain.compile_ptx(source, "sm_80")
    message = str(info.value)
    assert 'identifier "no_such_functionf" is undefined' in message, message
    # the offending line, numbered, with a marker
    bad = next(n for n, line in enumerate(source.splitlines(), 1) if "no_such_function" in line)
    assert f">{bad:6d} | " in message and "no_such_functionf(v0)" in message, message


def test_ptxas_errors_and_version_mismatch_are_explained() -> None:
    source = render.render_module([_op_kernel(ScalarOp.ADD, np.dtype(np.float32), "add")]).source
    ptx = toolchain.compile_ptx(source, "sm_80")
    assert set(toolchain.assemble(ptx, "sm_80")) == {"k0_add"}
    broken = ptx.replace("add.rn.f32", "add.bogus.f32", 1)  # (--fmad=false: rounded adds)
    assert broken != ptx
    with pytest.raises(toolchain.CudaCompileError, match="ptxas failed") as info:
        toolchain.assemble(broken, "sm_80")
    assert "add.bogus.f32" in str(info.value)  # the PTX line it rejects, shown
    newer = ptx.replace(".version ", ".version 99.", 1)
    with pytest.raises(toolchain.CudaCompileError, match="pin nvidia-cuda-nvrtc"):
        toolchain.assemble(newer, "sm_80")


def test_nvcc_compiles_the_same_source_when_nvrtc_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = render.render_module([_op_kernel(ScalarOp.LOGADDEXP, np.dtype(np.float16),
                                              "lae")]).source
    monkeypatch.setattr(toolchain, "_nvrtc", lambda: None)
    ptx = toolchain.compile_ptx(source, "sm_90")
    assert ".entry k0_lae" in ptx and set(toolchain.assemble(ptx, "sm_90")) == {"k0_lae"}
    with pytest.raises(toolchain.CudaCompileError, match="nvcc failed"):
        toolchain.compile_ptx(source.replace("fg_logaddexp(v", "fg_nothing(v"), "sm_90")
