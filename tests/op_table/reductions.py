"""Op-table records for the reductions family: the strict ``fgrad.lax`` reductions,
argmax/argmin, the cumulative ops, and the ``fgrad.numpy`` reductions built on them.

Each record pairs an fgrad function with its JAX twin; static parameters
(axes, keepdims, ddof ...) are bound by lambdas on both sides. Records whose
derivative has a kink at ties (max, min, cummax, ptp, std of equal values)
``prepare`` their input with ``_distinct``, so finite differences stay off
the kinks; the ties themselves, and zeros in products, are tested against
``jax.grad`` in ``tests/primitives/test_reductions.py``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax as jlax

import fgrad.numpy as fnp
from fgrad import lax
from op_table import Arg, Rec

F16 = (np.float32, np.float16)


def _distinct(*xs: np.ndarray) -> list[np.ndarray]:
    """Each array's values replaced by distinct, well separated ones in the same order.

    The grid is shifted off 0 and 0.5, where the records' masks and initial values sit.
    """
    out = []
    for x in xs:
        x = np.asarray(x)
        grid = np.linspace(-1.9, 1.9, x.size) + 0.0123 if x.size > 1 else np.full(x.size, 0.37)
        y = np.empty(x.size)
        y[np.argsort(x.ravel(), kind="stable")] = grid
        out.append(y.reshape(x.shape).astype(x.dtype))
    return out


KINKS = {"reduce_max", "reduce_min", "argmax", "argmin", "cummax", "cummin", "max", "amax_all",
         "min_keepdims", "amin", "max_initial_where", "ptp", "nanmax", "nanmin", "std",
         "std_ddof", "var", "var_ddof_keepdims"}


def _lax_records() -> list[Rec]:
    recs: list[Rec] = []
    for name, axes, shape in [("reduce_sum", (1,), (3, 4)), ("reduce_sum", (0, 2), (2, 3, 2)),
                              ("reduce_max", (1,), (3, 4)), ("reduce_max", (0, 1), (3, 4)),
                              ("reduce_min", (0,), (3, 4)), ("reduce_min", (), (3,)),
                              ("reduce_prod", (1,), (3, 4)), ("reduce_prod", (0, 1), (2, 3))]:
        recs.append(Rec(
            name=f"lax_{name}_{'_'.join(map(str, axes)) or 'none'}_{len(shape)}d",
            fn=lambda x, n=name, a=axes: getattr(lax, n)(x, a),
            jax_fn=lambda x, n=name, a=axes: getattr(jlax, n)(x, a),
            args=[Arg(shape)], prims=(name,), dtypes=F16,
            linear=name == "reduce_sum", prepare=_distinct if name in KINKS else None))
    for name in ("reduce_and", "reduce_or"):
        recs.append(Rec(name=f"lax_{name}", fn=lambda x, n=name: getattr(lax, n)(x, (0, 1)),
                        jax_fn=lambda x, n=name: getattr(jlax, n)(x, (0, 1)),
                        args=[Arg((3, 4), "bool")], prims=(name,), diff=False))
        recs.append(Rec(name=f"lax_{name}_int", fn=lambda x, n=name: getattr(lax, n)(x, (1,)),
                        jax_fn=lambda x, n=name: getattr(jlax, n)(x, (1,)),
                        args=[Arg((3, 4), "int", (0, 16))], prims=(name,), diff=False))
    for name in ("argmax", "argmin"):
        recs.append(Rec(name=f"lax_{name}",
                        fn=lambda x, n=name: getattr(lax, n)(x, 1, np.int32),
                        jax_fn=lambda x, n=name: getattr(jlax, n)(x, 1, np.int32),
                        args=[Arg((3, 5))], prims=(name,), dtypes=F16, diff=False,
                        prepare=_distinct))
    for name in ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"):
        for axis, reverse in [(0, False), (1, True)]:
            recs.append(Rec(
                name=f"lax_{name}_{axis}{'_reverse' if reverse else ''}",
                fn=lambda x, n=name, a=axis, r=reverse: getattr(lax, n)(x, a, r),
                jax_fn=lambda x, n=name, a=axis, r=reverse: getattr(jlax, n)(x, axis=a,
                                                                           reverse=r),
                args=[Arg((5, 3))], prims=(name,), linear=name == "cumsum",
                dtypes=F16 if name != "cumlogsumexp" else (np.float32,),
                prepare=_distinct if name in KINKS else None))
    return recs


def _numpy_records() -> list[Rec]:
    # (name, fgrad function, JAX function, input shape, differentiable)
    table = [
        ("sum", lambda x: fnp.sum(x, axis=-1), lambda x: jnp.sum(x, axis=-1), (3, 4), True),
        ("sum_keepdims", lambda x: fnp.sum(x, axis=(0, 2), keepdims=True),
         lambda x: jnp.sum(x, axis=(0, 2), keepdims=True), (2, 3, 2), True),
        ("prod", lambda x: fnp.prod(x, axis=0), lambda x: jnp.prod(x, axis=0), (3, 4), True),
        ("max", lambda x: fnp.max(x, axis=1), lambda x: jnp.max(x, axis=1), (3, 4), True),
        ("amax_all", lambda x: fnp.amax(x), lambda x: jnp.amax(x), (3, 4), True),
        ("min_keepdims", lambda x: fnp.min(x, axis=-2, keepdims=True),
         lambda x: jnp.min(x, axis=-2, keepdims=True), (3, 4), True),
        ("amin", lambda x: fnp.amin(x, axis=0), lambda x: jnp.amin(x, axis=0), (3, 4), True),
        ("max_initial_where", lambda x: fnp.max(x, axis=1, initial=0.5, where=x > 0),
         lambda x: jnp.max(x, axis=1, initial=0.5, where=x > 0), (3, 4), True),
        ("mean", lambda x: fnp.mean(x, axis=1), lambda x: jnp.mean(x, axis=1), (3, 4), True),
        ("mean_all", lambda x: fnp.mean(x), lambda x: jnp.mean(x), (2, 3, 2), True),
        ("var", lambda x: fnp.var(x, axis=0), lambda x: jnp.var(x, axis=0), (4, 3), True),
        ("var_ddof_keepdims", lambda x: fnp.var(x, axis=(0, 1), ddof=1, keepdims=True),
         lambda x: jnp.var(x, axis=(0, 1), ddof=1, keepdims=True), (3, 4), True),
        ("std", lambda x: fnp.std(x, axis=-1), lambda x: jnp.std(x, axis=-1), (3, 4), True),
        ("std_ddof", lambda x: fnp.std(x, ddof=1), lambda x: jnp.std(x, ddof=1), (5,), True),
        ("ptp", lambda x: fnp.ptp(x, axis=1), lambda x: jnp.ptp(x, axis=1), (3, 4), True),
        ("average_weights", lambda x, w: fnp.average(x, axis=1, weights=w),
         lambda x, w: jnp.average(x, axis=1, weights=w), ((3, 4), (4,)), True),
        ("average", lambda x: fnp.average(x, axis=0), lambda x: jnp.average(x, axis=0),
         (3, 4), True),
        ("cumsum", lambda x: fnp.cumsum(x, axis=1), lambda x: jnp.cumsum(x, axis=1),
         (3, 4), True),
        ("cumsum_flat", lambda x: fnp.cumsum(x), lambda x: jnp.cumsum(x), (3, 4), True),
        ("cumprod", lambda x: fnp.cumprod(x, axis=0), lambda x: jnp.cumprod(x, axis=0),
         (4, 3), True),
        ("cumulative_sum", lambda x: fnp.cumulative_sum(x, axis=0, include_initial=True),
         lambda x: jnp.cumulative_sum(x, axis=0, include_initial=True), (4, 3), True),
        ("cumulative_prod", lambda x: fnp.cumulative_prod(x),
         lambda x: jnp.cumulative_prod(x), (5,), True),
        ("nansum", lambda x: fnp.nansum(x, axis=0), lambda x: jnp.nansum(x, axis=0),
         (3, 4), True),
        ("nanmean", lambda x: fnp.nanmean(x, axis=1), lambda x: jnp.nanmean(x, axis=1),
         (3, 4), True),
        ("nanmax", lambda x: fnp.nanmax(x, axis=1), lambda x: jnp.nanmax(x, axis=1),
         (3, 4), True),
        ("nanmin", lambda x: fnp.nanmin(x), lambda x: jnp.nanmin(x), (3, 4), True),
        ("nanprod", lambda x: fnp.nanprod(x, axis=1), lambda x: jnp.nanprod(x, axis=1),
         (3, 4), True),
        ("argmax", lambda x: fnp.argmax(x, axis=1), lambda x: jnp.argmax(x, axis=1),
         (3, 4), False),
        ("argmin_flat_keepdims", lambda x: fnp.argmin(x, keepdims=True),
         lambda x: jnp.argmin(x, keepdims=True), (3, 4), False),
        ("all", lambda x: fnp.all(x > 0, axis=1), lambda x: jnp.all(x > 0, axis=1),
         (3, 4), False),
        ("any", lambda x: fnp.any(x > 1, axis=0, keepdims=True),
         lambda x: jnp.any(x > 1, axis=0, keepdims=True), (3, 4), False),
        ("count_nonzero", lambda x: fnp.count_nonzero(x > 0, axis=1),
         lambda x: jnp.count_nonzero(x > 0, axis=1), (3, 4), False),
    ]
    recs = []
    for name, fn, jax_fn, shape, diff in table:
        shapes = shape if isinstance(shape[0], tuple) else (shape,)
        args = [Arg(s, domain=(0.5, 2.0)) if name == "average_weights" and i == 1 else Arg(s)
                for i, s in enumerate(shapes)]
        recs.append(Rec(name=f"fnp_{name}", fn=fn, jax_fn=jax_fn, args=args, diff=diff,
                        prepare=_distinct if name in KINKS else None))
    return recs


RECORDS: list[Rec] = _lax_records() + _numpy_records()
