"""Dtypes: fgrad's dtype set, x64 canonicalization, and JAX's type-promotion lattice.

Every fgrad array has a dtype from ``SUPPORTED_DTYPES`` (no complex) and a
*weak type* flag, set when the dtype came from a Python scalar rather than the
user: in ``x + 1.0`` the weak float ``1.0`` yields to ``x``'s float16.

Promotion follows JAX's lattice (JAX docs, "Type promotion semantics"): the
dtypes plus weak nodes ``i*`` and ``f*`` form a partial order, and the result
type is the least upper bound (LUB) of the inputs' nodes, tabulated at import
from the lattice's edges (the textbook algorithm, not a hand-written table).

With ``config.enable_x64`` off (the default, as in JAX), 64-bit dtypes are
narrowed to 32 bits; the flag is read at call time. Read next: ``core/avals.py``
(ShapedArray carries ``dtype`` and ``weak_type``).
"""

from __future__ import annotations

import functools
from typing import Any

import ml_dtypes
import numpy as np

from fgrad.config import config

DTypeLike = Any  # anything np.dtype() accepts: np.dtype, scalar types, strings, float, int, bool

# The bfloat16 scalar type (np.dtype(bfloat16) is its dtype), like jnp.bfloat16.
bfloat16 = ml_dtypes.bfloat16

# Each supported dtype and its lattice node name (the names used in the JAX docs).
_NODE_OF_DTYPE: dict[np.dtype, str] = {np.dtype(t): name for t, name in [
    (bool, "b1"), (np.int8, "i8"), (np.int16, "i16"), (np.int32, "i32"), (np.int64, "i64"),
    (np.uint8, "u8"), (np.uint16, "u16"), (np.uint32, "u32"), (np.uint64, "u64"),
    (np.float16, "f16"), (bfloat16, "bf16"), (np.float32, "f32"), (np.float64, "f64"),
]}  # fmt: skip
_DTYPE_OF_NODE: dict[str, np.dtype] = {node: dt for dt, node in _NODE_OF_DTYPE.items()}
SUPPORTED_DTYPES: tuple[np.dtype, ...] = tuple(_NODE_OF_DTYPE)
_BOOL = np.dtype(bool)

# "b" bool, "i" signed, "u" unsigned, "f" float (bfloat16 too; numpy calls its kind "V").
_KIND = {dt: "f" if node == "bf16" else dt.kind for dt, node in _NODE_OF_DTYPE.items()}
# With x64 off these are narrowed; float16/bfloat16 and the small ints never are.
_TO_32BIT = {np.dtype(wide): np.dtype(narrow) for wide, narrow in
             [(np.float64, np.float32), (np.int64, np.int32), (np.uint64, np.uint32)]}  # fmt: skip
# The default dtype of each kind, indexed by the x64 flag: (x64 off, x64 on).
_DEFAULTS = {kind: (np.dtype(narrow), np.dtype(wide)) for kind, narrow, wide in [
    ("b", bool, bool), ("i", np.int32, np.int64), ("u", np.uint32, np.uint64),
    ("f", np.float32, np.float64)]}  # fmt: skip
# The Python ints that fit the default int, indexed by the x64 flag.
_INT_RANGE = ((-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1))


# --- canonicalization -----------------------------------------------------------------------


# Memoized (one entry per dtype-like and x64 setting): this runs on every op.
@functools.cache
def _canonicalize(dtype: DTypeLike, x64: bool) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in _KIND:  # complex, strings, objects, float8, ...
        supported = ", ".join(map(str, SUPPORTED_DTYPES))
        raise TypeError(f"fgrad does not support dtype {dt} (it supports {supported}).")
    return dt if x64 else _TO_32BIT.get(dt, dt)


def canonicalize_dtype(dtype: DTypeLike) -> np.dtype:
    """``np.dtype(dtype)``, narrowed to 32 bits when ``config.enable_x64`` is off.

    ``dtype`` is anything ``np.dtype()`` accepts (``float``, ``int``, ``bool`` too).
    Raises TypeError for complex and other unsupported dtypes.

    >>> canonicalize_dtype("int16")
    dtype('int16')
    """
    return _canonicalize(dtype, config.enable_x64)


def default_float_dtype() -> np.dtype:
    """float64 with x64 on, else float32: the dtype of a Python float."""
    return _DEFAULTS["f"][config.enable_x64]


def default_int_dtype() -> np.dtype:
    """int64 with x64 on, else int32: the dtype of a Python int."""
    return _DEFAULTS["i"][config.enable_x64]


def default_uint_dtype() -> np.dtype:
    """uint64 with x64 on, else uint32."""
    return _DEFAULTS["u"][config.enable_x64]


# --- dtype of a value -----------------------------------------------------------------------


def dtype_and_weak_type(x: Any) -> tuple[np.dtype, bool]:
    """The (dtype, weak_type) fgrad assigns to a value.

    Python bools are strong bool; Python ints and floats are weak, with the
    default int/float dtype; numpy arrays and scalars are strong, with their
    dtype canonicalized; fgrad Arrays, tracers and avals report their own.
    Raises OverflowError for a Python int that does not fit the default int,
    TypeError for complex and other unsupported values.

    >>> dtype_and_weak_type(True)
    (dtype('bool'), False)
    """
    kind = type(x)
    # Exact types first: the hot path, and np.float64 (a float subclass) must not match.
    if kind is bool:
        return _BOOL, False
    if kind is int:
        low, high = _INT_RANGE[config.enable_x64]
        if not low <= x <= high:  # NOTE: JAX raises here too rather than wrapping around
            raise OverflowError(f"Python int {x} too large to convert to {default_int_dtype()}")
        return default_int_dtype(), True
    if kind is float:
        return default_float_dtype(), True
    if isinstance(x, (np.ndarray, np.generic)):
        return canonicalize_dtype(x.dtype), False
    weak_type = getattr(x, "weak_type", None)
    if weak_type is not None and hasattr(x, "dtype"):
        # NOTE: not canonicalized, as in JAX: an array made while x64 was on keeps its dtype.
        return np.dtype(x.dtype), bool(weak_type)
    for base in (bool, int, float):  # subclasses, e.g. an IntEnum member
        if isinstance(x, base):
            return dtype_and_weak_type(base(x))
    # Foreign arrays, nested lists and the like: numpy's dtype, canonicalized (which
    # rejects complex values and other unsupported dtypes).
    return canonicalize_dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype), False


# --- the promotion lattice ------------------------------------------------------------------

# Each node maps to the nodes immediately above it. "i*" and "f*" are the weak int
# and weak float: they sit below every int (resp. float), so they never widen a
# strong type. u64 and i64 have no common int above them, so they meet at f*.
# NOTE: JAX's x32 lattice also has u32 -> i32; we need no such edge, because results
# are canonicalized afterwards and u32 v i32 = i64 narrows to the same int32.
_LATTICE_EDGES: dict[str, tuple[str, ...]] = {
    "b1": ("i*",),
    "i*": ("u8", "i8"),
    "u8": ("u16", "i16"), "u16": ("u32", "i32"), "u32": ("u64", "i64"), "u64": ("f*",),
    "i8": ("i16",),       "i16": ("i32",),       "i32": ("i64",),       "i64": ("f*",),
    "f*": ("bf16", "f16"),
    "bf16": ("f32",), "f16": ("f32",), "f32": ("f64",), "f64": (),
}  # fmt: skip
_WEAK_NODES = frozenset({"i*", "f*"})


def _upper_bounds(edges: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    # UB(n) = {m : n <= m} = {n} together with the upper bounds of the nodes just above n.
    bounds: dict[str, frozenset[str]] = {}

    def visit(node: str) -> frozenset[str]:
        if node not in bounds:
            bounds[node] = frozenset({node}).union(*(visit(above) for above in edges[node]))
        return bounds[node]

    for node in edges:
        visit(node)
    return bounds


def _least_upper_bounds(bounds: dict[str, frozenset[str]]) -> dict[tuple[str, str], str]:
    # The common upper bounds of a and b are UB(a) & UB(b); the least one is the c
    # among them that is below all the others, i.e. whose own UB(c) contains them all.
    table: dict[tuple[str, str], str] = {}
    for a in bounds:
        for b in bounds:
            common = bounds[a] & bounds[b]
            least = [c for c in common if common <= bounds[c]]
            if len(least) != 1:  # would mean the edges above do not form a lattice
                raise AssertionError(f"no unique least upper bound for {a} and {b}: {least}")
            table[a, b] = least[0]
    return table


_LUB = _least_upper_bounds(_upper_bounds(_LATTICE_EDGES))


def _node(dtype: np.dtype, weak_type: bool) -> str:
    # A weak value sits at the weak node of its kind; a weak bool is just bool (as in JAX).
    if weak_type and dtype != _BOOL:
        return "f*" if _KIND[dtype] == "f" else "i*"
    return _NODE_OF_DTYPE[dtype]


def _dtype_of_node(node: str, x64: bool) -> np.dtype:
    if node in _WEAK_NODES:  # "i*" -> default int, "f*" -> default float
        return _DEFAULTS[node[0]][x64]
    return _canonicalize(_DTYPE_OF_NODE[node], x64)


def promote_types(a: DTypeLike, b: DTypeLike) -> np.dtype:
    """The dtype two strongly typed operands are promoted to (JAX's lattice).

    Unlike ``jnp.promote_types``, the result is canonicalized (never 64-bit with x64 off).

    >>> promote_types(np.int8, np.uint8)
    dtype('int16')
    """
    x64 = config.enable_x64
    node = _LUB[_NODE_OF_DTYPE[_canonicalize(a, x64)], _NODE_OF_DTYPE[_canonicalize(b, x64)]]
    return _dtype_of_node(node, x64)


def result_type(*pairs: tuple[DTypeLike, bool]) -> tuple[np.dtype, bool]:
    """The (dtype, weak_type) of an operation on operands with these (dtype, weak_type).

    Matches ``jax.dtypes.result_type(..., return_weak_type_flag=True)``. Memoized
    per x64 setting, so on the eager hot path it is one dict lookup. Raises
    ValueError when called with no operands.

    >>> result_type((np.float16, False), (np.float32, True))
    (dtype('float16'), False)
    """
    return _result_type(config.enable_x64, pairs)


@functools.lru_cache(maxsize=4096)
def _result_type(x64: bool, pairs: tuple[tuple[DTypeLike, bool], ...]) -> tuple[np.dtype, bool]:
    if not pairs:
        raise ValueError("result_type needs at least one (dtype, weak_type) pair")
    dtypes = [_canonicalize(dtype, x64) for dtype, _ in pairs]
    weak_types = [bool(weak) for _, weak in pairs]
    # The three cases of JAX's lattice_result_type. (Its fourth, "all dtypes equal and
    # not all weak", always agrees with the general case, since i* and f* sit below.)
    if len(dtypes) == 1:
        dtype, weak = dtypes[0], weak_types[0]
    elif all(weak_types):
        # Join the strong counterparts, then mark the result weak: so weak u8 v weak u16
        # is a weak *unsigned* int, where the general case would give i*.
        node = functools.reduce(lambda a, b: _LUB[a, b], [_NODE_OF_DTYPE[d] for d in dtypes])
        dtype, weak = _dtype_of_node(node, x64), True
    else:
        # The join of many nodes is a fold, since a lattice's join is associative.
        nodes = [_node(d, w) for d, w in zip(dtypes, weak_types, strict=True)]
        node = functools.reduce(lambda a, b: _LUB[a, b], nodes)
        dtype, weak = _dtype_of_node(node, x64), node in _WEAK_NODES
    # JAX's final step: bool is never weak, and a weak result has the default dtype of
    # its kind (so even a lone weak bfloat16 comes out as weak float32).
    weak = weak and dtype != _BOOL
    if weak:
        dtype = _DEFAULTS[_KIND[dtype]][x64]
    return dtype, weak


# --- predicates and info --------------------------------------------------------------------


def _kind(dtype: DTypeLike) -> str | None:  # None for dtypes fgrad does not support
    return _KIND.get(dtype if isinstance(dtype, np.dtype) else np.dtype(dtype))


def is_float(dtype: DTypeLike) -> bool:
    """True for float16, bfloat16, float32, float64."""
    return _kind(dtype) == "f"


is_inexact = is_float  # fgrad has no complex dtypes, so inexact means float


def is_int(dtype: DTypeLike) -> bool:
    """True for signed and unsigned integer dtypes (not bool)."""
    return _kind(dtype) in ("i", "u")


def is_unsigned(dtype: DTypeLike) -> bool:
    """True for uint8 .. uint64."""
    return _kind(dtype) == "u"


def is_bool(dtype: DTypeLike) -> bool:
    """True for bool."""
    return _kind(dtype) == "b"


def finfo(dtype: DTypeLike) -> Any:
    """Machine limits of a float dtype (bfloat16 included, via ml_dtypes)."""
    if not is_float(dtype):
        raise TypeError(f"finfo needs a float dtype, got {np.dtype(dtype)}")
    return ml_dtypes.finfo(np.dtype(dtype))  # type: ignore[no-untyped-call]


def iinfo(dtype: DTypeLike) -> np.iinfo:
    """Machine limits of an integer dtype."""
    if not is_int(dtype):
        raise TypeError(f"iinfo needs an integer dtype, got {np.dtype(dtype)}")
    return np.iinfo(dtype)


def short_name(dtype: DTypeLike) -> str:
    """The jaxpr printer's name for a dtype: f32, bf16, i8, u64, bool, ..."""
    node = _NODE_OF_DTYPE.get(dtype if isinstance(dtype, np.dtype) else np.dtype(dtype))
    if node is None:
        raise TypeError(f"fgrad does not support dtype {dtype}")
    return "bool" if node == "b1" else node
