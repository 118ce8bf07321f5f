"""Products and contractions with numpy semantics: ``dot``, ``matmul``, ``vdot``,
``inner``, ``outer``, ``tensordot``, ``einsum``, ``kron``, plus ``trace`` and
``diagonal``.

Every product lowers to the one contraction primitive, ``lax.dot_general``
(see ``fgrad/primitives/linalg.py``): the work here is numpy's shape rules
turned into dimension numbers. Operands are promoted to their common dtype
first (JAX's lattice; the result is weakly typed only if both inputs are), and
``preferred_element_type`` picks the accumulation and output dtype as in JAX.

Conventions worth knowing:

* ``matmul`` broadcasts leading (batch) axes; a 1-D operand is a vector
  (prepended or appended axis, removed again), and 0-d operands are errors.
  ``dot`` instead *stacks* the batch axes of its operands, and multiplies by
  scalars.
* ``einsum`` contracts its operands pairwise, left to right, each pair with
  one ``dot_general``. Indices found in a single operand only are summed
  first; an index repeated inside one operand (``"ii->i"``) takes a diagonal
  by masking with the identity and summing, so no gather is needed.
  ``optimize`` is accepted and ignored.
* ``diagonal`` is a strided ``slice`` of the flattened matrix (the diagonal
  of an (n, m) matrix is every (m+1)-th element), and ``trace`` masks the
  diagonal and sums, as JAX does.
"""

from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.numpy._util import asarray_arg, cast, normalize_axis, promote_dtypes, result_dtype
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import reductions as _red
from fgrad.primitives import shape as _shape
from fgrad.primitives.linalg import dot_general


def _output_type(arrays: Sequence[Any], preferred_element_type: Any) -> tuple[np.dtype, bool]:
    """The result's (dtype, weak_type): promoted inputs, or the user's preferred dtype."""
    if preferred_element_type is None:
        return result_dtype(*arrays)
    return dtypes.canonicalize_dtype(preferred_element_type), False


def _prepare(op: str, arrays: Sequence[Any], preferred_element_type: Any
             ) -> tuple[list[Any], np.dtype, bool, Any]:
    """Promote the operands to one dtype; return them, the output type and the dot's pet."""
    arrays = promote_dtypes(*arrays, op=op)
    in_aval = get_aval(arrays[0])
    if preferred_element_type is None:  # promote_dtypes gave every operand the result type
        return list(arrays), in_aval.dtype, in_aval.weak_type, None
    out_dtype = dtypes.canonicalize_dtype(preferred_element_type)
    pet = None if out_dtype == in_aval.dtype else out_dtype
    return list(arrays), out_dtype, False, pet


def _argsort(xs: Sequence[int]) -> list[int]:
    return sorted(range(len(xs)), key=xs.__getitem__)


def _maybe_transpose(x: Any, perm: Sequence[int]) -> Any:
    perm = tuple(int(p) for p in perm)
    return x if perm == tuple(range(len(perm))) else _shape.transpose(x, perm)


# --- dot, matmul -------------------------------------------------------------------------------

def dot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """``numpy.dot``: the last axis of ``a`` against the second-to-last of ``b``.

    Scalars multiply; N-d operands stack their other axes
    (``out.shape == a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``).

    >>> import fgrad.numpy as fnp
    >>> dot(fnp.ones((2, 3)), fnp.ones(3)).shape
    (2,)
    """
    (a, b), dtype, weak, pet = _prepare("dot", (a, b), preferred_element_type)
    if a.ndim == 0 or b.ndim == 0:
        contract: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    else:
        b_axis = 0 if b.ndim == 1 else b.ndim - 2
        if a.shape[-1] != b.shape[b_axis]:
            raise ValueError(f"dot: shapes {_s(a)} and {_s(b)} are not aligned: "
                             f"{a.shape[-1]} (dim {a.ndim - 1}) != {b.shape[b_axis]} "
                             f"(dim {b_axis})")
        contract = ((a.ndim - 1,), (b_axis,))
    out = dot_general(a, b, (contract, ((), ())), precision, pet)
    return cast(out, dtype, weak)


def _s(x: Any) -> str:
    return get_aval(x).str_short()


def matmul(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """``a @ b`` (``numpy.matmul``): matrix products broadcast over leading axes.

    A 1-D ``a`` is a row vector and a 1-D ``b`` a column vector; the added
    axis is removed from the result. Leading axes broadcast as in numpy.

    >>> import fgrad.numpy as fnp
    >>> matmul(fnp.ones((5, 1, 2, 3)), fnp.ones((4, 3, 6))).shape
    (5, 4, 2, 6)
    """
    a, b = asarray_arg(a, "matmul"), asarray_arg(b, "matmul")
    for i, x in enumerate((a, b)):
        if x.ndim < 1:
            raise ValueError(f"matmul: input operand {i} must have ndim at least 1, but it "
                             f"has ndim 0 ({_s(x)})")
    (a, b), dtype, weak, pet = _prepare("matmul", (a, b), preferred_element_type)
    a_is_mat, b_is_mat = a.ndim > 1, b.ndim > 1
    k_a, k_b = a.shape[-1], b.shape[-2] if b_is_mat else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {_s(a)} and {_s(b)} are incompatible: contracting "
                         f"dimensions {k_a} and {k_b} differ")
    if a.ndim == 2 and b.ndim == 2:  # a plain matrix product (the common case): no batch axes
        return cast(dot_general(a, b, (((1,), (0,)), ((), ())), precision, pet), dtype, weak)
    a_batch = a.shape[:-2] if a_is_mat else ()
    b_batch = b.shape[:-2] if b_is_mat else ()
    nbatch = max(len(a_batch), len(b_batch))
    a_batch = (None,) * (nbatch - len(a_batch)) + a_batch
    b_batch = (None,) * (nbatch - len(b_batch)) + b_batch
    # Classify each broadcast batch axis i: a true batch axis of both operands
    # (dot_general batch dims), an axis of only one (a free axis of that operand,
    # after squeezing a size-1 partner), or size 1 in both (squeezed, restored).
    a_squeeze: list[int] = []
    b_squeeze: list[int] = []
    both_squeezed: list[int] = []
    a_dims: list[int] = []   # batch axis positions in the squeezed a and b
    b_dims: list[int] = []
    out_batch: list[int] = []  # output axis of each dot_general output axis, in order
    out_a: list[int] = []
    out_b: list[int] = []
    for i, (sa, sb) in enumerate(zip(a_batch, b_batch)):
        a_pos = len(out_batch) + len(out_a) + len(a_squeeze)  # position in unsqueezed a
        b_pos = len(out_batch) + len(out_b) + len(b_squeeze)
        if sa is None:
            out_b.append(i)
        elif sb is None:
            out_a.append(i)
        elif sa == 1 and sb == 1:
            a_squeeze.append(a_pos)
            b_squeeze.append(b_pos)
            both_squeezed.append(i)
        elif sa == 1:
            a_squeeze.append(a_pos)
            out_b.append(i)
        elif sb == 1:
            b_squeeze.append(b_pos)
            out_a.append(i)
        elif sa == sb:
            a_dims.append(len(out_batch) + len(out_a))
            b_dims.append(len(out_batch) + len(out_b))
            out_batch.append(i)
        else:
            raise ValueError(f"matmul: shapes {_s(a)} and {_s(b)} are incompatible: batch "
                             f"dimensions {a.shape[:-2]} and {b.shape[:-2]} cannot be "
                             "broadcast together")
    if a_is_mat:
        out_a.append(nbatch)
    if b_is_mat:
        out_b.append(nbatch + a_is_mat)
    a = _shape.squeeze(a, a_squeeze) if a_squeeze else a
    b = _shape.squeeze(b, b_squeeze) if b_squeeze else b
    dims = (((a.ndim - 1,), (b.ndim - 1 - b_is_mat,)), (tuple(a_dims), tuple(b_dims)))
    out = dot_general(a, b, dims, precision, pet)
    out = _maybe_transpose(out, _argsort(out_batch + out_a + out_b))
    if both_squeezed:
        out = _shape.expand_dims(out, both_squeezed)
    return cast(out, dtype, weak)


# --- vdot, inner, outer, tensordot ------------------------------------------------------------

def vdot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Dot product of the flattened arrays (``numpy.vdot``; no conjugation on real arrays)."""
    a, b = asarray_arg(a, "vdot"), asarray_arg(b, "vdot")
    if a.size != b.size:
        raise ValueError(f"vdot: arrays {_s(a)} and {_s(b)} must have the same size")
    return dot(_shape.reshape(a, (a.size,)), _shape.reshape(b, (b.size,)), precision=precision,
               preferred_element_type=preferred_element_type)


def inner(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Contract the last axes of ``a`` and ``b`` (``numpy.inner``); scalars multiply."""
    a, b = asarray_arg(a, "inner"), asarray_arg(b, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return dot(a, b, precision=precision, preferred_element_type=preferred_element_type)
    return tensordot(a, b, (-1, -1), precision=precision,
                     preferred_element_type=preferred_element_type)


def outer(a: Any, b: Any, out: None = None) -> Any:
    """``outer(a, b)[i, j] = a.ravel()[i] * b.ravel()[j]`` (``numpy.outer``)."""
    if out is not None:
        raise NotImplementedError("outer: the 'out' argument is not supported (arrays are "
                                  "immutable)")
    a, b = promote_dtypes(a, b, op="outer")
    # A dot_general with nothing contracted is the outer product of two vectors.
    return dot_general(_shape.reshape(a, (a.size,)), _shape.reshape(b, (b.size,)),
                       (((), ()), ((), ())))


def tensordot(a: Any, b: Any, axes: Any = 2, *, precision: Any = None,
              preferred_element_type: Any = None) -> Any:
    """Sum products over the given axes (``numpy.tensordot``).

    ``axes`` is an int ``k`` (the last k axes of ``a`` with the first k of
    ``b``), a pair of ints, or a pair of equal-length sequences of axes.
    """
    (a, b), dtype, weak, pet = _prepare("tensordot", (a, b), preferred_element_type)
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        k = int(axes)
        if not 0 <= k <= min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: number of axes {k} exceeds the input ranks "
                             f"({_s(a)} and {_s(b)})")
        a_axes, b_axes = tuple(range(a.ndim - k, a.ndim)), tuple(range(k))
    elif isinstance(axes, (tuple, list)) and len(axes) == 2:
        ax1, ax2 = axes
        if isinstance(ax1, (int, np.integer)) and isinstance(ax2, (int, np.integer)):
            ax1, ax2 = (ax1,), (ax2,)
        if not (isinstance(ax1, (tuple, list)) and isinstance(ax2, (tuple, list))):
            raise TypeError("tensordot: axes must be an int or a pair of ints or of sequences "
                            f"of ints, got {axes!r}")
        if len(ax1) != len(ax2):
            raise ValueError(f"tensordot: axes lists must have equal length, got {ax1} and "
                             f"{ax2}")
        a_axes = tuple(normalize_axis(i, a.ndim, "tensordot") for i in ax1)
        b_axes = tuple(normalize_axis(i, b.ndim, "tensordot") for i in ax2)
    else:
        raise TypeError("tensordot: axes must be an int, a pair of ints, or a pair of "
                        f"sequences of ints, got {axes!r}")
    for i, j in zip(a_axes, b_axes):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"tensordot: shape mismatch for sum: axis {i} of {_s(a)} has size "
                             f"{a.shape[i]} but axis {j} of {_s(b)} has size {b.shape[j]}")
    out = dot_general(a, b, ((a_axes, b_axes), ((), ())), precision, pet)
    return cast(out, dtype, weak)


def kron(a: Any, b: Any) -> Any:
    """Kronecker product (``numpy.kron``): blocks ``a[i] * b`` laid out in a grid."""
    a, b = promote_dtypes(a, b, op="kron")
    nd = max(a.ndim, b.ndim)
    a = _shape.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = _shape.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) -> (a0, b0, a1, b1, ...) -> (a0*b0, ...)
    a = _shape.reshape(a, tuple(d for s in a.shape for d in (s, 1)))
    b = _shape.reshape(b, tuple(d for s in b.shape for d in (1, s)))
    full = tuple(x * y for x, y in zip(a.shape, b.shape))
    prod = _ew.mul(_broadcast(a, full), _broadcast(b, full))
    return _shape.reshape(prod, tuple(full[2 * i] * full[2 * i + 1] for i in range(nd)))


def _broadcast(x: Any, shape: tuple[int, ...]) -> Any:
    return x if x.shape == shape else _shape.broadcast_in_dim(x, shape, tuple(range(len(shape))))


# --- einsum --------------------------------------------------------------------------------
# Axis labels are ints: a letter is its code point (>= 0); the axes an ellipsis
# stands for are -E..-1, right-aligned across operands so they broadcast.

Labels = list[int]


def einsum(subscripts: Any, *operands: Any, out: None = None, optimize: Any = "auto",
           precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Einstein summation (``numpy.einsum``), lowered to pairwise ``dot_general``s.

    Supports explicit (``"ij,jk->ik"``) and implicit (``"ij,jk"``) outputs,
    ``...`` (broadcast), indices repeated within an operand (diagonals),
    size-1 broadcasting, and numpy's interleaved form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``. ``optimize`` is ignored: the
    operands are contracted left to right.

    >>> import fgrad.numpy as fnp
    >>> einsum("ij,jk->ki", fnp.ones((2, 3)), fnp.ones((3, 4))).shape
    (4, 2)
    """
    del optimize
    if out is not None:
        raise NotImplementedError("einsum: the 'out' argument is not supported (arrays are "
                                  "immutable)")
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved_to_subscripts(subscripts, operands)
    arrays = [asarray_arg(x, "einsum") for x in operands]
    inputs, output = _parse_einsum(subscripts, [x.ndim for x in arrays])
    arrays = promote_dtypes(*arrays, op="einsum")
    dtype, weak = _output_type(arrays, preferred_element_type)
    arrays = [cast(x, dtype) for x in arrays]  # compute in the output dtype, as JAX does
    sizes = _label_sizes(subscripts, inputs, arrays)

    operands_: list[tuple[Any, Labels]] = []
    for i, (x, labels) in enumerate(zip(arrays, inputs)):
        x, labels = _squeeze_broadcast(x, labels, sizes)
        x, labels = _take_diagonals(x, labels)
        elsewhere = set(output).union(*(inputs[j] for j in range(len(inputs)) if j != i))
        x, labels = _sum_labels(x, labels, [lab for lab in labels if lab not in elsewhere])
        operands_.append((x, labels))

    acc, acc_labels = operands_[0]
    for i in range(1, len(operands_)):
        later = set(output).union(*(labels for _, labels in operands_[i + 1:]))
        acc, acc_labels = _contract_pair(acc, acc_labels, *operands_[i], later, precision)
    acc, acc_labels = _sum_labels(acc, acc_labels, [lab for lab in acc_labels
                                                    if lab not in output])
    acc = _maybe_transpose(acc, [acc_labels.index(lab) for lab in output])
    return cast(acc, dtype, weak)


def _interleaved_to_subscripts(first: Any, rest: Sequence[Any]) -> tuple[str, list[Any]]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` -> ``("ab,bc->ac", [a, b])``."""
    args = [first, *rest]
    operands, terms = args[0::2], args[1::2]
    out_sub = None
    if len(operands) > len(terms):  # a trailing output sublist
        out_sub = operands.pop()

    def term(sublist: Sequence[Any]) -> str:
        chars = []
        for s in sublist:
            if s is Ellipsis:
                chars.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(string.ascii_letters):
                chars.append(string.ascii_letters[int(s)])
            else:
                raise ValueError(f"einsum: subscript {s!r} in a sublist must be an int in "
                                 f"[0, {len(string.ascii_letters)}) or Ellipsis")
        return "".join(chars)

    spec = ",".join(term(t) for t in terms)
    if out_sub is not None:
        spec += "->" + term(out_sub)
    return spec, operands


def _parse_term(term: str, ndim: int, where: str) -> tuple[Labels, int]:
    """Labels for one operand's subscripts, and how many axes its ellipsis covers."""
    if term.count("...") > 1 or "." in term.replace("...", ""):
        raise ValueError(f"einsum: invalid ellipsis in subscripts {where!r}")
    letters = term.replace("...", "")
    bad = [c for c in letters if c not in string.ascii_letters]
    if bad:
        raise ValueError(f"einsum: invalid subscript {bad[0]!r} in {where!r}: subscripts must "
                         "be letters")
    n_ell = ndim - len(letters) if "..." in term else 0
    if n_ell < 0 or ("..." not in term and len(letters) != ndim):
        raise ValueError(f"einsum: subscripts {term!r} in {where!r} name {len(letters)} axes, "
                         f"but the operand has {ndim}")
    before, _, after = term.partition("...")
    labels = [ord(c) for c in before] + list(range(-n_ell, 0)) + [ord(c) for c in after]
    return labels, n_ell


def _parse_einsum(subscripts: str, ndims: Sequence[int]) -> tuple[list[Labels], Labels]:
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} contain more than one '->'")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), "
                         f"but {len(ndims)} were given")
    parsed = [_parse_term(t, nd, subscripts) for t, nd in zip(terms, ndims)]
    inputs = [labels for labels, _ in parsed]
    n_ell = max((n for _, n in parsed), default=0)
    if not arrow:
        counts: dict[int, int] = {}
        for labels in inputs:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        letters = sorted(lab for lab, c in counts.items() if c == 1 and lab >= 0)
        return inputs, list(range(-n_ell, 0)) + letters
    n_out = len(rhs.replace("...", "")) + (n_ell if "..." in rhs else 0)
    output, _ = _parse_term(rhs, n_out, subscripts)
    seen = {lab for labels in inputs for lab in labels}
    for lab in output:
        if output.count(lab) > 1:
            raise ValueError(f"einsum: output subscript {chr(lab)!r} appears more than once "
                             f"in {subscripts!r}")
        if lab not in seen and lab >= 0:
            raise ValueError(f"einsum: output subscript {chr(lab)!r} in {subscripts!r} does "
                             "not appear in the inputs")
    return inputs, output


def _label_name(lab: int) -> str:
    return chr(lab) if lab >= 0 else "..."


def _label_sizes(subscripts: str, inputs: Sequence[Labels], arrays: Sequence[Any]
                 ) -> dict[int, int]:
    """Each label's size; size-1 axes broadcast against larger ones."""
    sizes: dict[int, int] = {}
    for labels, x in zip(inputs, arrays):
        for lab in set(labels):  # a label repeated within one operand: a diagonal
            repeated = [n for other, n in zip(labels, x.shape) if other == lab]
            if len(set(repeated)) > 1:
                raise ValueError(f"einsum: repeated subscript {_label_name(lab)!r} in "
                                 f"{subscripts!r} needs equal sizes, got {repeated}")
        for lab, n in zip(labels, x.shape):
            old = sizes.setdefault(lab, n)
            if old == 1:
                sizes[lab] = n
            elif n not in (1, old):
                raise ValueError(f"einsum: size of label {_label_name(lab)!r} is {old} in one "
                                 f"operand and {n} in another ({subscripts!r} with shapes "
                                 f"{', '.join(_s(a) for a in arrays)})")
    return sizes


def _squeeze_broadcast(x: Any, labels: Labels, sizes: dict[int, int]) -> tuple[Any, Labels]:
    """Drop size-1 axes whose label is larger elsewhere: the other operand broadcasts."""
    drop = [i for i, lab in enumerate(labels) if x.shape[i] == 1 and sizes[lab] != 1]
    if not drop:
        return x, labels
    return _shape.squeeze(x, drop), [lab for i, lab in enumerate(labels) if i not in drop]


def _take_diagonals(x: Any, labels: Labels) -> tuple[Any, Labels]:
    """For a label repeated within one operand, keep the diagonal along its axes.

    Mask with the generalized identity (select, so NaN-safe) and sum over all
    but the last of those axes: gather-free, and linear, so it differentiates
    and transposes like any other masked sum.
    """
    for lab in dict.fromkeys(labels):
        axes = [i for i, other in enumerate(labels) if other == lab]
        if len(axes) < 2:
            continue
        n = x.shape[axes[0]]  # equal sizes: checked by _label_sizes
        delta = np.zeros((n,) * len(axes), bool)
        delta[(np.arange(n),) * len(axes)] = True
        from fgrad.core.array import Array
        mask = _shape.broadcast_in_dim(Array(delta), x.shape, axes)
        x = _ew.select_n(mask, _shape.full_like(x, 0), x)
        x = _red.reduce_sum(x, axes[:-1])
        labels = [other for i, other in enumerate(labels) if i not in axes[:-1]]
    return x, labels


def _sum_labels(x: Any, labels: Labels, drop: Sequence[int]) -> tuple[Any, Labels]:
    if not drop:
        return x, labels
    axes = [i for i, lab in enumerate(labels) if lab in drop]
    return _red.reduce_sum(x, axes), [lab for lab in labels if lab not in drop]


def _contract_pair(x: Any, x_labels: Labels, y: Any, y_labels: Labels, later: set[int],
                   precision: Any) -> tuple[Any, Labels]:
    """One ``dot_general``: shared labels needed later are batch axes, the rest contract."""
    x, x_labels = _sum_labels(x, x_labels, [lab for lab in x_labels
                                            if lab not in y_labels and lab not in later])
    y, y_labels = _sum_labels(y, y_labels, [lab for lab in y_labels
                                            if lab not in x_labels and lab not in later])
    shared = [lab for lab in x_labels if lab in y_labels]
    batch = [lab for lab in shared if lab in later]
    contract = [lab for lab in shared if lab not in later]
    dims = ((tuple(x_labels.index(lab) for lab in contract),
             tuple(y_labels.index(lab) for lab in contract)),
            (tuple(x_labels.index(lab) for lab in batch),
             tuple(y_labels.index(lab) for lab in batch)))
    out = dot_general(x, y, dims, precision)
    return out, (batch + [lab for lab in x_labels if lab not in shared]
                 + [lab for lab in y_labels if lab not in shared])


# --- trace, diagonal ----------------------------------------------------------------------

def _move_to_end(a: Any, axis1: int, axis2: int, op: str) -> Any:
    if a.ndim < 2:
        raise ValueError(f"{op}: requires an array of at least two dimensions, got {_s(a)}")
    ax1, ax2 = normalize_axis(axis1, a.ndim, op), normalize_axis(axis2, a.ndim, op)
    if ax1 == ax2:
        raise ValueError(f"{op}: axis1 and axis2 cannot be the same, got axis1={axis1} and "
                         f"axis2={axis2} for {_s(a)}")
    rest = [i for i in range(a.ndim) if i not in (ax1, ax2)]
    return _maybe_transpose(a, rest + [ax1, ax2])


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The ``offset`` diagonal of the (axis1, axis2) matrices; it becomes the last axis.

    >>> import fgrad.numpy as fnp
    >>> diagonal(fnp.ones((3, 4)), offset=1).shape
    (3,)
    """
    a = _move_to_end(asarray_arg(a, "diagonal"), axis1, axis2, "diagonal")
    offset = int(offset)
    *batch, n, m = a.shape
    length = max(0, min(n + min(offset, 0), m - max(offset, 0)))
    # Element (i, i + offset) of the flattened (n, m) matrix sits at i*(m+1) + offset
    # (for offset < 0: (i - offset, i) at i*(m+1) - offset*m): a strided slice.
    flat = _shape.reshape(a, (*batch, n * m))
    start = offset if offset >= 0 else -offset * m
    if length == 0:
        start = limit = 0
    else:
        limit = start + (length - 1) * (m + 1) + 1
    nb = len(batch)
    return _shape.slice(flat, (0,) * nb + (start,), (*batch, limit), (1,) * nb + (m + 1,))


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: None = None) -> Any:
    """Sum along the ``offset`` diagonal of the (axis1, axis2) matrices (``numpy.trace``).

    Small integers and bools accumulate in the default integer dtype, as in ``sum``.
    """
    if out is not None:
        raise NotImplementedError("trace: the 'out' argument is not supported")
    from fgrad.core.array import Array
    from fgrad.numpy._reductions import sum as _sum
    a = _move_to_end(asarray_arg(a, "trace"), axis1, axis2, "trace")
    n, m = a.shape[-2:]
    mask = _shape.broadcast_in_dim(Array(np.eye(n, m, int(offset), dtype=bool)), a.shape,
                                   (a.ndim - 2, a.ndim - 1))
    masked = _ew.select_n(mask, _shape.full_like(a, 0), a)
    return _sum(masked, axis=(-2, -1), dtype=dtype)


__all__ = ["dot", "matmul", "vdot", "inner", "outer", "tensordot", "einsum", "kron", "trace",
           "diagonal"]
