"""Kernel-IR rewrites the scheduler applies to every kernel before a renderer sees it.

``collapse_loops`` merges perfectly nested loops that walk memory as one:
a loop over ``i`` (extent ``E_i``) around a loop over ``j`` (extent ``E_j``)
becomes one loop over ``m = i*E_j + j`` when every buffer index steps
``E_j`` times further for ``i`` than for ``j``. Then

    for i in 0..64: for j in 0..14: for k in 0..16:
        out[i*224 + j*16 + k] = max(x[i*224 + j*16 + k], 0.0)

becomes ``for i in 0..14336: out[i] = max(x[i], 0.0)``: one long loop that
LLVM vectorizes and unrolls freely, instead of 896 short ones each paying
the vector loop's setup and remainder. A loop variable that also appears in
a mask, a data-dependent index or a division keeps its loop (merging would
change what those compute).

``block_sums`` splits a long float sum into blocks:

    acc += x[r] for r in 0..1000000
    ->  for rb in 0..976: (part = 0; for r in 0..1024: part += x[rb*1024 + r]); acc += part
        then the 576 left over straight into acc

Each element then meets a partial sum of at most 1024 terms and each block
sum one of at most n/1024, so rounding errors grow like 1024 + n/1024
additions instead of n: numpy sums pairwise for the same reason. (The
renderer lets LLVM reassociate a float sum's own additions, which keeps
several partial sums in vector registers inside each block.)

Both rewrites are exact in the kernel IR's terms (the same iterations, each
sum over the same elements), so the interpreter, the LLVM and the CUDA
renderers all see the simpler kernel.
"""

from __future__ import annotations

from typing import Any

from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Alu, Cast, DefineAcc, Idx, IndexValue, Kernel, Load, Loop, Param,
    ScalarOp, Stmt, Store, Value, add, const, floordiv, from_value, imax, imin, mod, mul, var)

BLOCK = 1024  # elements per partial sum in block_sums


def collapse_loops(stmts: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    """``stmts`` with mergeable perfectly nested loops merged (inner nests first)."""
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Loop):
            s = Loop(s.var, s.extent, collapse_loops(s.body), s.parallel)
            while len(s.body) == 1 and isinstance(s.body[0], Loop):
                inner = s.body[0]
                if not _mergeable(s.var, inner.var, inner.extent, inner.body):
                    break
                # every index is linear in both variables with coef(outer) = E * coef(inner),
                # so coef(inner) * merged, with merged = outer * E + inner, is the same index
                body = _Substitute({s.var: const(0), inner.var: var(s.var)}).stmts(inner.body)
                s = Loop(s.var, s.extent * inner.extent, body,
                         s.parallel and not read_modify_write(body))
        out.append(s)
    return tuple(out)


# --- which index expressions allow a merge ----------------------------------------------------

def _coef(e: Idx, v: str) -> int | None:
    """The coefficient of loop variable ``v`` in ``e``, or None if ``e`` is not linear in it."""
    if e.op == "var":
        return int(e.args[0] == v)
    if e.op == "const":
        return 0
    if e.op == "add":
        a, b = _coef(e.args[0], v), _coef(e.args[1], v)
        return None if a is None or b is None else a + b
    if e.op == "mul":
        a = _coef(e.args[0], v)
        return None if a is None else a * e.args[1].args[0]
    return None if _mentions(e, (v,)) else 0


def _mentions(e: Any, names: tuple[str, ...]) -> bool:
    """Whether index expression or value ``e`` uses any of the loop variables ``names``."""
    if isinstance(e, Idx):
        if e.op == "var":
            return e.args[0] in names
        return any(_mentions(a, names) for a in e.args if isinstance(a, (Idx, *_VALUES)))
    if isinstance(e, Load):
        return _mentions(e.index, names) or (e.mask is not None and _mentions(e.mask, names))
    if isinstance(e, Alu):
        return any(_mentions(a, names) for a in e.args)
    if isinstance(e, Cast):
        return _mentions(e.x, names)
    if isinstance(e, IndexValue):
        return _mentions(e.index, names)
    return False


_VALUES = (Load, Alu, Cast, IndexValue)


def _mergeable(outer: str, inner: str, extent: int, body: tuple[Stmt, ...]) -> bool:
    names = (outer, inner)
    ok = True
    seen: set[int] = set()

    def index(e: Idx) -> None:
        nonlocal ok
        a, b = _coef(e, outer), _coef(e, inner)
        if a is None or b is None or a != b * extent:
            ok = False

    def value(v: Any) -> None:
        nonlocal ok
        if id(v) in seen or not ok:
            return
        seen.add(id(v))
        if isinstance(v, Load):
            index(v.index)
            if v.mask is not None and _mentions(v.mask, names):
                ok = False
        elif isinstance(v, Alu):
            for a in v.args:
                value(a)
        elif isinstance(v, Cast):
            value(v.x)
        elif isinstance(v, IndexValue) and _mentions(v.index, names):
            ok = False

    def walk(stmts: tuple[Stmt, ...]) -> None:
        nonlocal ok
        for s in stmts:
            if isinstance(s, Loop):
                walk(s.body)
            elif isinstance(s, Store):
                index(s.index)
                value(s.value)
                if s.mask is not None and _mentions(s.mask, names):
                    ok = False
            elif isinstance(s, Accumulate):
                value(s.value)

    walk(body)
    return ok


def read_modify_write(stmts: tuple[Stmt, ...]) -> bool:
    """Does any store in ``stmts`` update its element (``+=``) rather than set it?"""
    return any(isinstance(s, Store) and s.op is not None or
               isinstance(s, Loop) and read_modify_write(s.body) for s in stmts)


# --- block sums ---------------------------------------------------------------------------------

def block_sums(stmts: tuple[Stmt, ...], accs: dict[str, DefineAcc] | None = None
               ) -> tuple[Stmt, ...]:
    """``stmts`` with every long loop that only adds to a float accumulator split in blocks."""
    accs = dict(accs or {})
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, DefineAcc):
            accs[s.name] = s
        if isinstance(s, Loop):
            s = Loop(s.var, s.extent, block_sums(s.body, accs), s.parallel)
            acc = s.body[0] if len(s.body) == 1 else None
            define = accs.get(acc.name) if isinstance(acc, Accumulate) else None
            if define is not None and define.op is ScalarOp.ADD and \
                    define.dtype.kind == "f" and s.extent >= 2 * BLOCK:
                out.extend(_blocked(s, acc, define))  # type: ignore[arg-type]
                continue
        out.append(s)
    return tuple(out)


def _blocked(loop: Loop, acc: Accumulate, define: DefineAcc) -> list[Stmt]:
    i, blocks = loop.var, loop.extent // BLOCK
    part = f"{acc.name}_{i}"
    inner = _Substitute({i: var(f"{i}b") * BLOCK + var(i)}).value(acc.value)
    out: list[Stmt] = [Loop(f"{i}b", blocks, (
        DefineAcc(part, ScalarOp.ADD, define.dtype),
        Loop(i, BLOCK, (Accumulate(part, inner),)),
        Accumulate(acc.name, AccRef(part, define.dtype))))]
    if loop.extent % BLOCK:
        tail = _Substitute({i: var(f"{i}t") + blocks * BLOCK}).value(acc.value)
        out.append(Loop(f"{i}t", loop.extent % BLOCK, (Accumulate(acc.name, tail),)))
    return out


# --- substitution -------------------------------------------------------------------------------

def canonical(kernel: Kernel, names: dict[str, str] | None = None) -> Kernel:
    """``kernel`` in a normal form, for comparing kernels: named ``kernel``, its buffers
    renamed by ``names`` (default: ``p0, p1, ...`` in parameter order), every sum's terms
    in one order, and the variables of loops of extent 1 replaced by 0. Two kernels
    that compute the same thing on other buffers become equal (a renderer compiles one
    function for both); with ``names`` renaming only the output, two that compute the
    same buffer from the same inputs do (``dedupe.py``), however their index arithmetic
    happened to be written (``i2 + i4 - 1`` against ``i4 + i2 - 1``)."""
    if names is None:
        names = {p.name: f"p{i}" for i, p in enumerate(kernel.params)}
    zeros: dict[str, Idx] = {}

    def find_ones(stmts: tuple[Stmt, ...]) -> None:
        for s in stmts:
            if isinstance(s, Loop):
                if s.extent == 1:
                    zeros[s.var] = const(0)
                find_ones(s.body)
    find_ones(kernel.body)
    params = tuple(Param(names.get(p.name, p.name), p.dtype, p.size, p.is_output)
                   for p in kernel.params)
    return Kernel("kernel", params, _Normalize(zeros, names).stmts(kernel.body))


def rename_buffers(kernel: Kernel, names: dict[str, str]) -> Kernel:
    """``kernel`` reading and writing ``names[b]`` wherever it did ``b`` (a buffer that
    becomes one already among its parameters is listed once)."""
    params: list[Param] = []
    for p in kernel.params:
        name = names.get(p.name, p.name)
        if all(q.name != name for q in params):
            params.append(Param(name, p.dtype, p.size, p.is_output))
    return Kernel(kernel.name, tuple(params), _Substitute({}, names).stmts(kernel.body))


class _Substitute:
    """Replace loop variables by index expressions (and rename buffers), in indices,
    values and statements."""

    def __init__(self, mapping: dict[str, Idx], buffers: dict[str, str] | None = None) -> None:
        self.mapping = mapping
        self.buffers = buffers or {}
        self.memo: dict[int, tuple[Any, Any]] = {}  # values are DAGs: rewrite each node once

    def idx(self, e: Idx) -> Idx:
        op, a = e.op, e.args
        if op == "var":
            return self.mapping.get(a[0], e)
        if op == "const":
            return e
        if op == "value":
            return from_value(self.value(a[0]))
        x, y = self.idx(a[0]), self.idx(a[1])
        rebuild = {"add": add, "min": imin, "max": imax,
                   "mul": lambda x, y: mul(x, y.args[0]),
                   "div": lambda x, y: floordiv(x, y.args[0]),
                   "mod": lambda x, y: mod(x, y.args[0])}.get(op)
        return rebuild(x, y) if rebuild else Idx(op, (x, y))

    def value(self, v: Value) -> Value:
        hit = self.memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        out: Value = v
        if isinstance(v, Load):
            out = Load(self.buffers.get(v.buf, v.buf), self.idx(v.index), v.dtype,
                       None if v.mask is None else self.idx(v.mask), v.fill)
        elif isinstance(v, Alu):
            out = Alu(v.op, tuple(self.value(a) for a in v.args), v.dtype)
        elif isinstance(v, Cast):
            out = Cast(self.value(v.x), v.dtype)
        elif isinstance(v, IndexValue):
            out = IndexValue(self.idx(v.index), v.dtype)
        self.memo[id(v)] = (v, out)
        return out

    def stmts(self, stmts: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for s in stmts:
            if isinstance(s, Loop):
                s = Loop(s.var, s.extent, self.stmts(s.body), s.parallel)
            elif isinstance(s, Store):
                s = Store(self.buffers.get(s.buf, s.buf), self.idx(s.index),
                          self.value(s.value), s.op, None if s.mask is None else self.idx(s.mask))
            elif isinstance(s, Accumulate):
                s = Accumulate(s.name, self.value(s.value))
            out.append(s)
        return tuple(out)


class _Normalize(_Substitute):
    """``_Substitute`` that also writes every sum with its terms sorted."""

    def idx(self, e: Idx) -> Idx:
        if e.op != "add":
            return super().idx(e)
        terms: list[Idx] = []
        stack = [e]
        while stack:
            t = stack.pop()
            if t.op == "add":
                stack.extend(t.args)
            else:
                terms.append(self.idx(t))
        total = const(0)
        for t in sorted(terms, key=str):
            total = add(total, t)
        return total


__all__ = ["collapse_loops", "block_sums", "canonical", "rename_buffers", "read_modify_write",
           "BLOCK"]
