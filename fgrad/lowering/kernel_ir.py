"""The kernel IR: the small loop language between jaxprs and native code.

``schedule.py`` turns a jaxpr into a ``Program`` of kernels written in this
IR; the CPU (LLVM) and GPU (CUDA C) renderers print it; ``interpret.py``
runs it with numpy and is the definition of what it means. Renderers never
see primitives or jaxprs, only what is here:

* ``ScalarOp``: a closed set of scalar operations (``semantics.py`` gives
  each its numpy meaning);
* index expressions (``Idx``): integer arithmetic on loop variables:
  affine sums, plus floor-division and modulo where a reshape needs them,
  and the comparisons a mask needs. The constructors fold constants, so a
  view's index prints as ``i*128 + j``, not as a tree;
* values: ``Const``, ``Load`` (through an index, optionally masked with a
  fill value: how padding reads without touching memory outside the
  buffer), ``Alu`` (a ``ScalarOp`` on values), ``Cast``, ``IndexValue``
  (a loop index as a number, for ``iota``) and ``AccRef`` (an accumulator);
* statements: ``Loop`` (``parallel`` marks loops whose iterations are
  independent), ``Store``, ``DefineAcc`` and ``Accumulate``.

A kernel reads and writes flat, C-contiguous buffers named by its params.
``str(kernel)`` prints readable pseudo-C.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Sequence, Union

import numpy as np


class ScalarOp(enum.Enum):
    # unary
    NEG = "neg"; ABS = "abs"; EXP = "exp"; LOG = "log"; LOG1P = "log1p"; EXPM1 = "expm1"  # noqa: E702
    SIN = "sin"; COS = "cos"; TANH = "tanh"; SQRT = "sqrt"; RSQRT = "rsqrt"  # noqa: E702
    FLOOR = "floor"; CEIL = "ceil"; ROUND = "round"; NOT = "not"  # noqa: E702
    ERF = "erf"; ERFC = "erfc"; LGAMMA = "lgamma"  # noqa: E702  (special functions: libm)
    # binary
    ADD = "+"; SUB = "-"; MUL = "*"; DIV = "/"; REM = "%"; POW = "pow"  # noqa: E702
    MAX = "max"; MIN = "min"; ATAN2 = "atan2"; AND = "&"; OR = "|"; XOR = "^"  # noqa: E702
    NEXTAFTER = "nextafter"; LOGADDEXP = "logaddexp"; SHL = "<<"; SHR = ">>"  # noqa: E702
    # comparisons (result bool)
    CMPLT = "<"; CMPLE = "<="; CMPEQ = "=="; CMPNE = "!="  # noqa: E702
    # ternary
    WHERE = "where"; FMA = "fma"  # noqa: E702
    # reinterpretation: the Alu's dtype is the target (same bit width)
    BITCAST = "bitcast"


UNARY = frozenset({ScalarOp.NEG, ScalarOp.ABS, ScalarOp.EXP, ScalarOp.LOG, ScalarOp.LOG1P,
                   ScalarOp.EXPM1, ScalarOp.SIN, ScalarOp.COS, ScalarOp.TANH, ScalarOp.SQRT,
                   ScalarOp.RSQRT, ScalarOp.FLOOR, ScalarOp.CEIL, ScalarOp.ROUND, ScalarOp.NOT,
                   ScalarOp.ERF, ScalarOp.ERFC, ScalarOp.LGAMMA, ScalarOp.BITCAST})
COMPARE = frozenset({ScalarOp.CMPLT, ScalarOp.CMPLE, ScalarOp.CMPEQ, ScalarOp.CMPNE})
BINARY = frozenset({ScalarOp.ADD, ScalarOp.SUB, ScalarOp.MUL, ScalarOp.DIV, ScalarOp.REM,
                    ScalarOp.POW, ScalarOp.MAX, ScalarOp.MIN, ScalarOp.ATAN2, ScalarOp.AND,
                    ScalarOp.OR, ScalarOp.XOR, ScalarOp.NEXTAFTER, ScalarOp.LOGADDEXP,
                    ScalarOp.SHL, ScalarOp.SHR}) | COMPARE
TERNARY = frozenset({ScalarOp.WHERE, ScalarOp.FMA})
# Ops a reduction may accumulate with (each has an identity, see semantics.py).
REDUCE_OPS = frozenset({ScalarOp.ADD, ScalarOp.MUL, ScalarOp.MAX, ScalarOp.MIN, ScalarOp.AND,
                        ScalarOp.OR, ScalarOp.LOGADDEXP})
ARITY = {**{op: 1 for op in UNARY}, **{op: 2 for op in BINARY}, **{op: 3 for op in TERNARY}}


# --- index expressions -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Idx:
    """An int64 index expression.

    ``op``: var, const, add, mul, div, mod, min, max (arithmetic), lt, ge, eq,
    and (conditions, 0 or 1), or value: an integer ``Value`` computed by the
    kernel (how gathers and dynamic slices index with data). Build them with
    the helpers below (``var``, ``const``, ``+``, ``*`` ...), which fold
    constants and drop ``+ 0`` and ``* 1``.
    """

    op: str
    args: tuple[Any, ...]

    def __add__(self, other: Idx | int) -> Idx:
        return add(self, as_idx(other))

    __radd__ = __add__

    def __mul__(self, c: int) -> Idx:
        return mul(self, c)

    __rmul__ = __mul__

    def __floordiv__(self, c: int) -> Idx:
        return floordiv(self, c)

    def __mod__(self, c: int) -> Idx:
        return mod(self, c)

    def __str__(self) -> str:
        op, a = self.op, self.args
        if op == "var":
            return a[0]
        if op == "const":
            return str(a[0])
        if op == "value":
            return f"(i64){a[0]}"
        if op in ("min", "max"):
            return f"{op}({a[0]}, {a[1]})"
        if op == "add":
            rhs = str(a[1])
            return f"{a[0]} - {rhs[1:]}" if rhs.startswith("-") else f"{a[0]} + {rhs}"
        symbol = {"mul": "*", "div": "/", "mod": "%", "lt": "<", "ge": ">=", "eq": "==",
                  "and": "&&"}[op]
        return f"{_paren(a[0], op)}{symbol}{_paren(a[1], op)}" if op in ("mul", "div", "mod") \
            else f"({a[0]} {symbol} {a[1]})"

    def is_const(self) -> bool:
        return self.op == "const"


def _paren(x: Any, parent: str) -> str:
    if isinstance(x, Idx) and x.op == "add":
        return f"({x})"
    if isinstance(x, Idx) and x.op in ("div", "mod") and parent != "mul":
        return f"({x})"
    return str(x)


def var(name: str) -> Idx:
    return Idx("var", (name,))


def const(c: int) -> Idx:
    return Idx("const", (int(c),))


def as_idx(x: Idx | int) -> Idx:
    return x if isinstance(x, Idx) else const(x)


def add(a: Idx, b: Idx) -> Idx:
    if a.is_const() and b.is_const():
        return const(a.args[0] + b.args[0])
    if a.is_const():
        a, b = b, a
    if b.is_const() and b.args[0] == 0:
        return a
    if a.op == "add" and a.args[1].is_const() and not b.is_const():
        return add(add(a.args[0], b), a.args[1])  # keep the constant last: i*8 + j + 3
    merged = _merge_digits(a, b)
    if merged is not None:
        return merged
    return Idx("add", (a, b))


def _merge_digits(a: Idx, b: Idx) -> Idx | None:
    """``a + b`` when ``b`` and one term of the sum ``a`` are neighbouring digits of the
    same number: ``x/B%N*B + x%B`` is ``x%(B*N)``, and ``x/A*A + x%A`` is ``x``. Reading
    a reshaped value through its source's indices splits a flat index into digits
    like these, and merging them back turns ``i/896*896 + i/32%28*32 + i%32`` into
    ``i`` (no division left, and the loop vectorizes). Both identities hold for any
    integer ``x``, with division and remainder rounding either way. None: no merge."""
    terms: list[Idx] = []
    rest = a
    while rest.op == "add":
        terms.append(rest.args[1])
        rest = rest.args[0]
    terms.append(rest)
    for k, t in enumerate(terms):
        merged = _digit_pair(t, b) or _digit_pair(b, t)
        if merged is not None:  # the sum again, in its order, the pair replaced
            ordered = terms[::-1]
            ordered[len(terms) - 1 - k] = merged
            total = ordered[0]
            for u in ordered[1:]:
                total = add(total, u)
            return total
    return None


def _digit_pair(high: Idx, low: Idx) -> Idx | None:
    """``high + low`` as one expression if ``low`` is ``x%B`` and ``high`` is ``x/B*B``
    (giving ``x``) or ``(x/B)%N*B`` (giving ``x%(B*N)``)."""
    if low.op != "mod" or high.op != "mul":
        return None
    x, b = low.args[0], low.args[1].args[0]
    inner, scale = high.args[0], high.args[1].args[0]
    if scale != b:
        return None
    if inner == Idx("div", (x, const(b))):
        return x
    if inner.op == "mod" and inner.args[0] == Idx("div", (x, const(b))):
        return mod(x, b * inner.args[1].args[0])
    return None


def mul(a: Idx, c: int) -> Idx:
    c = int(c)
    if a.is_const():
        return const(a.args[0] * c)
    if c == 0:
        return const(0)
    return a if c == 1 else Idx("mul", (a, const(c)))


def floordiv(a: Idx, c: int) -> Idx:
    if a.is_const():
        return const(a.args[0] // c)
    return a if c == 1 else Idx("div", (a, const(c)))


def mod(a: Idx, c: int) -> Idx:
    if a.is_const():
        return const(a.args[0] % c)
    return const(0) if c == 1 else Idx("mod", (a, const(c)))


def from_value(v: Any) -> Idx:
    """An integer ``Value`` (e.g. a ``Load`` from an index buffer) used as an index."""
    return Idx("value", (v,))


def imin(a: Idx | int, b: Idx | int) -> Idx:
    a, b = as_idx(a), as_idx(b)
    return const(min(a.args[0], b.args[0])) if a.is_const() and b.is_const() else \
        Idx("min", (a, b))


def imax(a: Idx | int, b: Idx | int) -> Idx:
    a, b = as_idx(a), as_idx(b)
    return const(max(a.args[0], b.args[0])) if a.is_const() and b.is_const() else \
        Idx("max", (a, b))


def _compare(op: str, a: Idx | int, b: Idx | int) -> Idx:
    a, b = as_idx(a), as_idx(b)
    if a.is_const() and b.is_const():  # decided while scheduling: 0 or 1
        x, y = a.args[0], b.args[0]
        return const({"lt": x < y, "ge": x >= y, "eq": x == y}[op])
    return Idx(op, (a, b))


def lt(a: Idx | int, b: Idx | int) -> Idx:
    return _compare("lt", a, b)


def ge(a: Idx | int, b: Idx | int) -> Idx:
    return _compare("ge", a, b)


def eq(a: Idx | int, b: Idx | int) -> Idx:
    return _compare("eq", a, b)


def all_of(conds: Sequence[Idx | None]) -> Idx | None:
    """The conjunction of ``conds`` (None when there are none, or all are always true;
    ``const(0)`` when one is never true). A None among ``conds`` is always true."""
    out: Idx | None = None
    for c in conds:
        if c is None or (c.is_const() and c.args[0]):
            continue
        if c.is_const():
            return const(0)
        out = c if out is None else Idx("and", (out, c))
    return out


# --- values -----------------------------------------------------------------------------------

def _short(dtype: np.dtype) -> str:
    from fgrad.core.dtypes import short_name
    return short_name(dtype)


@dataclasses.dataclass(frozen=True)
class Const:
    value: Any
    dtype: np.dtype

    def __str__(self) -> str:
        v = self.value
        if self.dtype.kind == "b":
            return "true" if v else "false"
        return repr(float(v)) if self.dtype.kind == "f" else str(int(v))


@dataclasses.dataclass(frozen=True)
class Load:
    """``buf[index]``; with a ``mask``, reads ``fill`` where the mask is false (no access)."""

    buf: str
    index: Idx
    dtype: np.dtype
    mask: Idx | None = None
    fill: Any = 0

    def __str__(self) -> str:
        read = f"{self.buf}[{self.index}]"
        return read if self.mask is None else f"({self.mask} ? {read} : {self.fill})"


@dataclasses.dataclass(frozen=True)
class Alu:
    op: ScalarOp
    args: tuple[Value, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        lets: list[str] = []
        names = _shared_names([self], lets)
        return "; ".join(lets + [_fmt(self, names)])


@dataclasses.dataclass(frozen=True)
class Cast:
    x: Value
    dtype: np.dtype

    def __str__(self) -> str:
        return _fmt(self, {})


@dataclasses.dataclass(frozen=True)
class IndexValue:
    """An index expression used as a number (``iota``), converted to ``dtype``."""

    index: Idx
    dtype: np.dtype

    def __str__(self) -> str:
        return f"({_short(self.dtype)})({self.index})"


@dataclasses.dataclass(frozen=True)
class AccRef:
    name: str
    dtype: np.dtype

    def __str__(self) -> str:
        return self.name


Value = Union[Const, Load, Alu, Cast, IndexValue, AccRef]


def flag(cond: Idx) -> Value:
    """An index condition (0 or 1) as a bool value."""
    if cond.is_const():
        return Const(np.bool_(cond.args[0]), np.dtype(bool))
    return Cast(IndexValue(cond, np.dtype(np.int64)), np.dtype(bool))


def select(cond: Idx | None, if_true: Value, if_false: Value) -> Value:
    """``cond ? if_true : if_false`` for an index condition (None: always true); a
    condition known while scheduling picks its side at once."""
    if cond is None or cond.is_const():
        return if_true if cond is None or cond.args[0] else if_false
    return Alu(ScalarOp.WHERE, (flag(cond), if_true, if_false), if_true.dtype)


def masked_load(buf: str, index: Idx, dtype: np.dtype, mask: Idx | None,
                fill: Any = 0) -> Value:
    """``buf[index]`` where ``mask`` holds, else ``fill`` (a mask that never holds reads
    nothing: the fill itself)."""
    if mask is not None and mask.is_const():
        if not mask.args[0]:
            return Const(np.asarray(fill).astype(dtype)[()], np.dtype(dtype))
        mask = None
    return Load(buf, index, dtype, mask, fill)


def alu(op: ScalarOp, *args: Value) -> Alu:
    """``op`` applied to ``args``; the result dtype follows the op (bool for comparisons)."""
    if len(args) != ARITY[op]:
        raise ValueError(f"kernel IR: {op.name} takes {ARITY[op]} operands, got {len(args)}")
    if op in COMPARE:
        dtype = np.dtype(bool)
    else:
        dtype = args[-1].dtype if op is ScalarOp.WHERE else args[0].dtype
    return Alu(op, tuple(args), dtype)


# --- statements and kernels -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Loop:
    var: str
    extent: int
    body: tuple[Stmt, ...]
    parallel: bool = False


@dataclasses.dataclass(frozen=True)
class Store:
    """``buf[index] = value``; with ``op``, ``buf[index] = op(buf[index], value)``
    (scatter-add and friends); with ``mask``, only where the mask holds."""

    buf: str
    index: Idx
    value: Value
    op: ScalarOp | None = None
    mask: Idx | None = None


@dataclasses.dataclass(frozen=True)
class DefineAcc:
    """Declare accumulator ``name`` of ``dtype``, initialised to ``op``'s identity."""

    name: str
    op: ScalarOp
    dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class Accumulate:
    """``name = op(name, value)``, with the op its ``DefineAcc`` declared."""

    name: str
    value: Value


Stmt = Union[Loop, Store, DefineAcc, Accumulate]


@dataclasses.dataclass(frozen=True)
class Param:
    """A kernel argument: a flat buffer of ``size`` elements of ``dtype``."""

    name: str
    dtype: np.dtype
    size: int
    is_output: bool = False

    def __str__(self) -> str:
        role = " (out)" if self.is_output else ""
        return f"{self.name}: {_short(self.dtype)}[{self.size}]{role}"


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]

    def __str__(self) -> str:
        lines = [f"kernel {self.name}({', '.join(map(str, self.params))}):"]
        _print_stmts(self.body, 1, lines)
        return "\n".join(lines)


def _print_stmts(stmts: Sequence[Stmt], depth: int, lines: list[str],
                 ops: dict[str, ScalarOp] | None = None) -> None:
    pad = "  " * depth
    ops = {} if ops is None else ops  # accumulator -> its op, seen by nested loops too
    for s in stmts:
        if isinstance(s, Loop):
            kind = "parallel for" if s.parallel else "for"
            inner = s.body
            single = _stmt_lines(inner[0], ops) if len(inner) == 1 and not isinstance(
                inner[0], Loop) else None
            if single is not None and len(single) == 1:
                lines.append(f"{pad}{kind} {s.var} in 0..{s.extent}: {single[0]}")
            else:
                lines.append(f"{pad}{kind} {s.var} in 0..{s.extent}:")
                _print_stmts(inner, depth + 1, lines, ops)
        else:
            if isinstance(s, DefineAcc):
                ops[s.name] = s.op
            lines.extend(pad + line for line in _stmt_lines(s, ops))


def _stmt_lines(s: Stmt, ops: dict[str, ScalarOp]) -> list[str]:
    """The statement, preceded by ``let`` lines naming its shared subexpressions."""
    lets: list[str] = []
    values = [s.value] if isinstance(s, (Store, Accumulate)) else []
    names = _shared_names(values, lets)
    fmt = lambda v: _fmt(v, names)  # noqa: E731
    if isinstance(s, Store):
        target = f"{s.buf}[{s.index}]"
        if s.op is None:
            line = f"{target} = {fmt(s.value)}"
        elif not s.op.value.isalpha():
            line = f"{target} {s.op.value}= {fmt(s.value)}"
        else:
            line = f"{target} = {s.op.value}({target}, {fmt(s.value)})"
        return lets + [line if s.mask is None else f"if {s.mask}: {line}"]
    if isinstance(s, DefineAcc):
        return [f"{_short(s.dtype)} {s.name} = identity({s.op.name})"]
    if isinstance(s, Accumulate):
        op = ops.get(s.name)
        if op is not None and not op.value.isalpha():
            return lets + [f"{s.name} {op.value}= {fmt(s.value)}"]
        return lets + [f"{s.name} = {op.value if op else '?'}({s.name}, {fmt(s.value)})"]
    return [str(s)]


def _shared_names(values: Sequence[Value], lets: list[str]) -> dict[int, str]:
    """Name every operation used more than once (expressions are DAGs); fill ``lets``."""
    counts: dict[int, int] = {}
    order: list[Value] = []

    def count(v: Any) -> None:
        counts[id(v)] = counts.get(id(v), 0) + 1
        if counts[id(v)] > 1:
            return
        for child in (v.args if isinstance(v, Alu) else (v.x,) if isinstance(v, Cast) else ()):
            count(child)
        order.append(v)  # post-order: children before parents

    for v in values:
        count(v)
    names: dict[int, str] = {}
    for v in order:
        if counts[id(v)] > 1 and isinstance(v, (Alu, Cast)):
            lets.append(f"let v{len(names)} = {_fmt(v, names)}")
            names[id(v)] = f"v{len(names)}"
    return names


def _fmt(v: Any, names: dict[int, str]) -> str:
    name = names.get(id(v))
    if name is not None:
        return name
    if isinstance(v, Alu):
        a = [_fmt(x, names) for x in v.args]
        if v.op is ScalarOp.WHERE:
            return f"({a[0]} ? {a[1]} : {a[2]})"
        if v.op in BINARY and not v.op.value.isalpha():
            return f"({a[0]} {v.op.value} {a[1]})"
        if v.op is ScalarOp.NEG:
            return f"-{a[0]}"
        if v.op is ScalarOp.BITCAST:
            return f"bitcast<{_short(v.dtype)}>({a[0]})"
        return f"{v.op.value}({', '.join(a)})"
    if isinstance(v, Cast):
        return f"({_short(v.dtype)}){_fmt(v.x, names)}"
    return str(v)


__all__ = ["ScalarOp", "UNARY", "BINARY", "COMPARE", "TERNARY", "REDUCE_OPS", "Idx", "var",
           "const", "as_idx", "from_value", "imin", "imax", "lt", "ge", "eq", "all_of", "Const",
           "Load", "Alu", "Cast", "IndexValue", "AccRef", "Value", "flag", "select",
           "masked_load", "alu", "Loop", "Store", "DefineAcc", "Accumulate", "Stmt", "Param",
           "Kernel"]
