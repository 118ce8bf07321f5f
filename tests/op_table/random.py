"""Op-table records for ``fgrad/primitives/random.py`` and ``fgrad.random``.

The primitives (``threefry2x32``, the shifts, ``bitcast_convert_type``,
``fma``, ``argsort``) against their ``jax.lax`` / ``jax.extend`` twins, and
every public ``fgrad.random`` function against ``jax.random`` with raw
``uint32[2]`` keys drawn as arbitrary uint32 pairs. Random functions are
not differentiated here (``diff=False``); ``fma`` is (it is plain
arithmetic). The generic suites compare values with a tolerance; bit-exact
equality with JAX is asserted in ``tests/random``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax.extend.random import threefry2x32_p as jax_threefry2x32_p

import fgrad.random as fr
from fgrad.primitives import random as prng
from op_table import Arg, Rec

jlax, jr = jax.lax, jax.random
U32 = np.uint32
KEY = Arg((2,), "int", (0, 2**32), dtype=U32)  # any pair of words is a valid raw key
S = (2, 3)


def _words(shape: tuple[int, ...]) -> list[Arg]:
    return [Arg(shape, "int", (0, 2**32), dtype=U32) for _ in range(4)]


def _shift_records(name: str) -> list[Rec]:
    recs = []
    for dtype, hi in ((np.uint32, 2**32), (np.int32, 2**31), (np.int8, 2**7), (np.uint16, 2**16)):
        lo = 0 if np.dtype(dtype).kind == "u" else -hi
        bits = np.dtype(dtype).itemsize * 8
        # shift amounts past the bit width (and negative ones for signed types) give 0
        amount = Arg(S, "int", (max(lo, -3), bits + 4), dtype=dtype)
        recs.append(Rec(f"{name}_{np.dtype(dtype).name}", getattr(prng, name),
                        [Arg(S, "int", (lo, hi), dtype=dtype), amount], getattr(jlax, name),
                        prims=(name,), diff=False))
    return recs


def _bitcast(src: object, dst: object, domain: tuple[float, float], kind: str) -> Rec:
    return Rec(f"bitcast_{np.dtype(src).name}_to_{np.dtype(dst).name}",
               functools.partial(prng.bitcast_convert_type, new_dtype=dst),
               [Arg(S, kind, domain, dtype=src)],
               functools.partial(jlax.bitcast_convert_type, new_dtype=dst),
               prims=("bitcast_convert_type",), diff=False)


PRIMITIVES = [
    Rec("threefry2x32", lambda *a: list(prng.threefry2x32(*a)), _words((3, 4)),
        lambda *a: list(jax_threefry2x32_p.bind(*a)), prims=("threefry2x32",), diff=False),
    Rec("threefry2x32_0d", lambda *a: list(prng.threefry2x32(*a)), _words(()),
        lambda *a: list(jax_threefry2x32_p.bind(*a)), prims=("threefry2x32",), diff=False),
    Rec("threefry2x32_size0", lambda *a: list(prng.threefry2x32(*a)), _words((0, 3)),
        lambda *a: list(jax_threefry2x32_p.bind(*a)), prims=("threefry2x32",), diff=False),
    *_shift_records("shift_left"),
    *_shift_records("shift_right_logical"),
    # uint32 patterns below 0x7F800000 are finite non-negative floats (no NaN payloads)
    _bitcast(np.uint32, np.float32, (0, 0x7F800000), "int"),
    _bitcast(np.float32, np.int32, (-3.0, 3.0), "float"),
    _bitcast(np.int32, np.uint32, (-2**31, 2**31), "int"),
    _bitcast(np.uint16, np.float16, (0, 0x7C00), "int"),
    _bitcast(np.float16, np.uint16, (-3.0, 3.0), "float"),
    Rec("fma", prng.fma, [Arg(S), Arg(S), Arg(S)], lambda x, y, z: x * y + z, prims=("fma",),
        dtypes=(np.float32, np.float16, ml_dtypes.bfloat16)),
    Rec("fma_0d", prng.fma, [Arg(()), Arg(()), Arg(())], lambda x, y, z: x * y + z,
        prims=("fma",)),
    Rec("argsort_float_axis1", functools.partial(prng.argsort, dimension=1), [Arg((3, 5))],
        lambda x: jnp.argsort(x, axis=1, stable=True).astype(np.int32), prims=("argsort",),
        diff=False),
    # small integers: many ties, which a stable sort keeps in index order
    Rec("argsort_int_ties_axis0", functools.partial(prng.argsort, dimension=0),
        [Arg((6, 2), "int", (0, 3))],
        lambda x: jnp.argsort(x, axis=0, stable=True).astype(np.int32), prims=("argsort",),
        diff=False),
    Rec("argsort_uint32", functools.partial(prng.argsort, dimension=0),
        [Arg((7,), "int", (0, 2**32), dtype=U32)],
        lambda x: jnp.argsort(x, stable=True).astype(np.int32), prims=("argsort",), diff=False),
]


def _rec(name: str, fn: object, args: list[Arg], jax_fn: object, **kw: object) -> Rec:
    return Rec(name, fn, args, jax_fn, diff=False,  # type: ignore[arg-type]
               prims=("threefry2x32",), **kw)  # type: ignore[arg-type]


def _key_data(seed: object) -> object:
    return jr.key_data(jr.key(seed))


PROB = Arg(S, domain=(0.0, 1.0))
PUBLIC = [
    _rec("random_key", fr.key, [Arg((), "int", (-2**31, 2**31))], _key_data),
    _rec("random_PRNGKey", fr.PRNGKey, [Arg((), "int", (-2**31, 2**31))], jr.PRNGKey),
    _rec("random_key_uint32_seed", fr.key, [Arg((), "int", (0, 2**32), dtype=U32)], _key_data),
    _rec("random_split", fr.split, [KEY], jr.split),
    _rec("random_split_shape", lambda k: fr.split(k, (2, 3)), [KEY],
         lambda k: jr.split(k, (2, 3))),
    _rec("random_fold_in", fr.fold_in, [KEY, Arg((), "int", (0, 2**31))], jr.fold_in),
    _rec("random_bits", lambda k: fr.bits(k, (3, 4)), [KEY], lambda k: jr.bits(k, (3, 4))),
    _rec("random_bits_uint8", lambda k: fr.bits(k, (5,), np.uint8), [KEY],
         lambda k: jr.bits(k, (5,), np.uint8)),
    _rec("random_uniform", lambda k: fr.uniform(k, (3, 4)), [KEY],
         lambda k: jr.uniform(k, (3, 4))),
    _rec("random_uniform_bounds", lambda k, lo, hi: fr.uniform(k, S, minval=lo, maxval=hi),
         [KEY, Arg(S, domain=(-2.0, -1.0)), Arg(S, domain=(1.0, 3.0))],
         lambda k, lo, hi: jr.uniform(k, S, minval=lo, maxval=hi),
         dtypes=(np.float32, np.float16, ml_dtypes.bfloat16)),
    _rec("random_normal", lambda k: fr.normal(k, (3, 4)), [KEY], lambda k: jr.normal(k, (3, 4)),
         rtol=2e-5),
    _rec("random_truncated_normal", lambda k, lo, hi: fr.truncated_normal(k, lo, hi),
         [KEY, Arg(S, domain=(-2.0, -0.5)), Arg(S, domain=(0.5, 2.0))],
         jr.truncated_normal, rtol=2e-5),
    _rec("random_gumbel", lambda k: fr.gumbel(k, (4,)), [KEY], lambda k: jr.gumbel(k, (4,)),
         rtol=2e-5),
    _rec("random_bernoulli", fr.bernoulli, [KEY, PROB], jr.bernoulli),
    _rec("random_randint", lambda k, lo, hi: fr.randint(k, S, lo, hi),
         [KEY, Arg(S, "int", (-50, 0)), Arg(S, "int", (1, 50))],
         lambda k, lo, hi: jr.randint(k, S, lo, hi)),
    _rec("random_randint_int8", lambda k: fr.randint(k, (6,), -128, 128, np.int8), [KEY],
         lambda k: jr.randint(k, (6,), -128, 128, np.int8)),
    _rec("random_permutation", lambda k: fr.permutation(k, 9), [KEY],
         lambda k: jr.permutation(k, 9)),
    _rec("random_permutation_axis1", lambda k, x: fr.permutation(k, x, axis=1),
         [KEY, Arg((3, 4))], lambda k, x: jr.permutation(k, x, axis=1)),
    _rec("random_permutation_independent",
         lambda k, x: fr.permutation(k, x, axis=1, independent=True), [KEY, Arg((3, 4))],
         lambda k, x: jr.permutation(k, x, axis=1, independent=True)),
    _rec("random_choice", lambda k: fr.choice(k, 7, (3,)), [KEY],
         lambda k: jr.choice(k, 7, (3,))),
    _rec("random_choice_no_replace", lambda k, x: fr.choice(k, x, (2,), replace=False),
         [KEY, Arg((5, 2))], lambda k, x: jr.choice(k, x, (2,), replace=False)),
    _rec("random_choice_p", lambda k, p: fr.choice(k, 3, (5,), p=p),
         [KEY, Arg((3,), domain=(0.1, 1.0))], lambda k, p: jr.choice(k, 3, (5,), p=p)),
    _rec("random_categorical", fr.categorical, [KEY, Arg((2, 4), domain=(-3.0, 3.0))],
         jr.categorical),
    _rec("random_categorical_axis0_shape",
         lambda k, lg: fr.categorical(k, lg, axis=0, shape=(3, 4)),
         [KEY, Arg((2, 4), domain=(-3.0, 3.0))],
         lambda k, lg: jr.categorical(k, lg, axis=0, shape=(3, 4))),
]

RECORDS = PRIMITIVES + PUBLIC
