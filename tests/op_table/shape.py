"""Op-table records for the shape family: the strict ``fgrad.lax`` shape primitives and
the numpy-style functions of ``fgrad/numpy/_shape.py``.

Every shape function moves data without arithmetic, so almost all records are
``linear`` in their float arguments (the generic suite then checks the
transpose rules by the dot-product test). The configurations deliberately
include the awkward cases: negative (cropping) and interior padding, strided
slices, size-0 and size-1 axes, 0-d operands, mixed dtypes and Python scalars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fgrad.lax as lax
import fgrad.numpy as fnp
from op_table import Arg, Rec

F = "float"
ALL_FLOATS = (np.float32, np.float16, jnp.bfloat16)


def _arg(*shape: int) -> Arg:
    return Arg(tuple(shape))


def _lax(name: str, fn, jax_fn, args, prim: str, **kw) -> Rec:  # type: ignore[no-untyped-def]
    kw.setdefault("linear", True)
    kw.setdefault("dtypes", ALL_FLOATS)
    return Rec(name, fn, args, jax_fn, prims=(prim,), **kw)


def _np(name: str, fn, jax_fn, args, prims: tuple[str, ...], **kw) -> Rec:  # type: ignore[no-untyped-def]
    kw.setdefault("linear", True)
    return Rec(name, fn, args, jax_fn, prims=prims, **kw)


PAD_CROP = ((-1, 2, 1), (1, -2, 2))
PAD_MIXED = ((0, 0, 0), (2, -3, 0), (-1, -1, 3))

# fmt: off
LAX_RECORDS = [
    _lax("lax_broadcast_in_dim_new_axis",
         lambda x: lax.broadcast_in_dim(x, (2, 3), (1,)),
         lambda x: jax.lax.broadcast_in_dim(x, (2, 3), (1,)), [_arg(3)], "broadcast_in_dim"),
    _lax("lax_broadcast_in_dim_stretch",
         lambda x: lax.broadcast_in_dim(x, (4, 1, 3), (0, 2)),
         lambda x: jax.lax.broadcast_in_dim(x, (4, 1, 3), (0, 2)), [_arg(1, 3)],
         "broadcast_in_dim"),
    _lax("lax_broadcast_in_dim_scalar",
         lambda x: lax.broadcast_in_dim(x, (2, 0, 3), ()),
         lambda x: jax.lax.broadcast_in_dim(x, (2, 0, 3), ()), [_arg()], "broadcast_in_dim"),
    _lax("lax_full", lambda v: lax.full((2, 3), v), lambda v: jax.lax.full((2, 3), v),
         [_arg()], "broadcast_in_dim"),
    _lax("lax_full_like", lambda x: lax.full_like(x, 2.5), lambda x: jax.lax.full_like(x, 2.5),
         [_arg(2, 3)], "broadcast_in_dim", linear=False),
    _lax("lax_reshape", lambda x: lax.reshape(x, (2, 6)), lambda x: jax.lax.reshape(x, (2, 6)),
         [_arg(3, 4)], "reshape"),
    _lax("lax_reshape_dimensions", lambda x: lax.reshape(x, (4, 3), (1, 0)),
         lambda x: jax.lax.reshape(x, (4, 3), (1, 0)), [_arg(3, 4)], "reshape"),
    _lax("lax_reshape_to_scalar", lambda x: lax.reshape(x, ()),
         lambda x: jax.lax.reshape(x, ()), [_arg(1, 1)], "reshape"),
    _lax("lax_transpose", lambda x: lax.transpose(x, (2, 0, 1)),
         lambda x: jax.lax.transpose(x, (2, 0, 1)), [_arg(2, 3, 4)], "transpose"),
    _lax("lax_squeeze", lambda x: lax.squeeze(x, (0, 2)), lambda x: jax.lax.squeeze(x, (0, 2)),
         [_arg(1, 3, 1)], "squeeze"),
    _lax("lax_expand_dims", lambda x: lax.expand_dims(x, (0, -1)),
         lambda x: jax.lax.expand_dims(x, (0, -1)), [_arg(3, 4)], "reshape"),
    _lax("lax_slice", lambda x: lax.slice(x, (1, 0), (4, 6)),
         lambda x: jax.lax.slice(x, (1, 0), (4, 6)), [_arg(5, 6)], "slice"),
    _lax("lax_slice_strided", lambda x: lax.slice(x, (1, 0), (5, 6), (2, 4)),
         lambda x: jax.lax.slice(x, (1, 0), (5, 6), (2, 4)), [_arg(5, 6)], "slice"),
    _lax("lax_slice_empty", lambda x: lax.slice(x, (2, 1), (2, 4), (1, 2)),
         lambda x: jax.lax.slice(x, (2, 1), (2, 4), (1, 2)), [_arg(3, 4)], "slice"),
    _lax("lax_slice_in_dim", lambda x: lax.slice_in_dim(x, 1, 6, 2, 1),
         lambda x: jax.lax.slice_in_dim(x, 1, 6, 2, 1), [_arg(2, 7)], "slice"),
    _lax("lax_pad", lambda x, v: lax.pad(x, v, ((1, 2, 0), (0, 1, 0))),
         lambda x, v: jax.lax.pad(x, v, ((1, 2, 0), (0, 1, 0))), [_arg(3, 4), _arg()], "pad"),
    _lax("lax_pad_crop_interior", lambda x, v: lax.pad(x, v, PAD_CROP),
         lambda x, v: jax.lax.pad(x, v, PAD_CROP), [_arg(3, 4), _arg()], "pad"),
    _lax("lax_pad_mixed_3d", lambda x, v: lax.pad(x, v, PAD_MIXED),
         lambda x, v: jax.lax.pad(x, v, PAD_MIXED), [_arg(2, 5, 3), _arg()], "pad"),
    _lax("lax_pad_empty_operand", lambda x, v: lax.pad(x, v, ((1, 1, 2), (0, 0, 0))),
         lambda x, v: jax.lax.pad(x, v, ((1, 1, 2), (0, 0, 0))), [_arg(0, 2), _arg()], "pad"),
    _lax("lax_pad_scalar_operand", lambda x, v: lax.pad(x, v, ()),
         lambda x, v: jax.lax.pad(x, v, ()), [_arg(), _arg()], "pad"),
    _lax("lax_concatenate", lambda a, b, c: lax.concatenate([a, b, c], 0),
         lambda a, b, c: jax.lax.concatenate([a, b, c], 0),
         [_arg(2, 3), _arg(1, 3), _arg(0, 3)], "concatenate"),
    _lax("lax_concatenate_last_axis", lambda a, b: lax.concatenate([a, b], 2),
         lambda a, b: jax.lax.concatenate([a, b], 2), [_arg(2, 1, 3), _arg(2, 1, 2)],
         "concatenate"),
    _lax("lax_concatenate_one", lambda a: lax.concatenate([a], 0),
         lambda a: jax.lax.concatenate([a], 0), [_arg(3)], "concatenate"),
    _lax("lax_rev", lambda x: lax.rev(x, (0, 1)), lambda x: jax.lax.rev(x, (0, 1)),
         [_arg(3, 4)], "rev"),
    _lax("lax_rev_middle", lambda x: lax.rev(x, (1,)), lambda x: jax.lax.rev(x, (1,)),
         [_arg(2, 3, 2)], "rev"),
    Rec("lax_iota", lambda n: lax.iota(np.int32, n), [Arg((), "const", value=5)],
        lambda n: jax.lax.iota(np.int32, n), prims=("iota",), diff=False),
    Rec("lax_broadcasted_iota", lambda d: lax.broadcasted_iota(np.float32, (2, 3), d),
        [Arg((), "const", value=1)], lambda d: jax.lax.broadcasted_iota(np.float32, (2, 3), d),
        prims=("iota",), diff=False),
]

NUMPY_RECORDS = [
    _np("np_reshape", lambda x: fnp.reshape(x, (-1, 2)),
        lambda x: jnp.reshape(jnp.asarray(x), (-1, 2)),
        [_arg(3, 4)], ("reshape",)),
    _np("np_ravel", fnp.ravel, jnp.ravel, [_arg(2, 3, 2)], ("reshape",)),
    _np("np_transpose_default", fnp.transpose, jnp.transpose, [_arg(2, 3, 4)], ("transpose",)),
    _np("np_transpose_axes", lambda x: fnp.transpose(x, (-1, 0, 1)),
        lambda x: jnp.transpose(x, (-1, 0, 1)), [_arg(2, 3, 4)], ("transpose",)),
    _np("np_swapaxes", lambda x: fnp.swapaxes(x, 0, -1), lambda x: jnp.swapaxes(x, 0, -1),
        [_arg(2, 3, 4)], ("transpose",)),
    _np("np_moveaxis", lambda x: fnp.moveaxis(x, (0, 1), (-1, 0)),
        lambda x: jnp.moveaxis(x, (0, 1), (-1, 0)), [_arg(2, 3, 4)], ("transpose",)),
    _np("np_expand_dims", lambda x: fnp.expand_dims(x, (0, -1)),
        lambda x: jnp.expand_dims(x, (0, -1)), [_arg(3)], ("reshape",)),
    _np("np_squeeze_all", fnp.squeeze, jnp.squeeze, [_arg(1, 3, 1)], ("squeeze",)),
    _np("np_squeeze_axis", lambda x: fnp.squeeze(x, -1), lambda x: jnp.squeeze(x, -1),
        [_arg(1, 3, 1)], ("squeeze",)),
    _np("np_broadcast_to", lambda x: fnp.broadcast_to(x, (2, 3, 4)),
        lambda x: jnp.broadcast_to(x, (2, 3, 4)), [_arg(3, 1)], ("broadcast_in_dim",)),
    _np("np_broadcast_arrays", lambda x, y: fnp.broadcast_arrays(x, y),
        lambda x, y: jnp.broadcast_arrays(x, y), [_arg(3, 1), _arg(4)],
        ("broadcast_in_dim",)),
    _np("np_concatenate", lambda a, b: fnp.concatenate([a, b], axis=-1),
        lambda a, b: jnp.concatenate([a, b], axis=-1), [_arg(2, 3), _arg(2, 1)],
        ("concatenate",)),
    _np("np_concatenate_axis_none", lambda a, b: fnp.concatenate([a, b], axis=None),
        lambda a, b: jnp.concatenate([a, b], axis=None), [_arg(2, 3), _arg(4)],
        ("concatenate", "reshape")),
    _np("np_concatenate_promote", lambda a, i: fnp.concatenate([a, i]),
        lambda a, i: jnp.concatenate([a, i]), [_arg(2), Arg((3,), "int", (-5, 5))],
        ("concatenate", "convert_element_type"), dtypes=ALL_FLOATS, linear=False),
    _np("np_stack", lambda a, b: fnp.stack([a, b], axis=1),
        lambda a, b: jnp.stack([a, b], axis=1), [_arg(2, 3), _arg(2, 3)],
        ("concatenate", "reshape")),
    _np("np_stack_weak_scalar", lambda a: fnp.stack([a, 1.5]),
        lambda a: jnp.stack([a, 1.5]), [_arg()], ("concatenate",), dtypes=ALL_FLOATS,
        linear=False),
    _np("np_hstack", lambda a, b: fnp.hstack([a, b]), lambda a, b: jnp.hstack([a, b]),
        [_arg(3), _arg(2)], ("concatenate",)),
    _np("np_vstack", lambda a, b: fnp.vstack([a, b]), lambda a, b: jnp.vstack([a, b]),
        [_arg(3), _arg(2, 3)], ("concatenate",)),
    _np("np_dstack", lambda a, b: fnp.dstack([a, b]), lambda a, b: jnp.dstack([a, b]),
        [_arg(2, 3), _arg(2, 3, 2)], ("concatenate",)),
    _np("np_column_stack", lambda a, b: fnp.column_stack([a, b]),
        lambda a, b: jnp.column_stack([a, b]), [_arg(3), _arg(3, 2)], ("concatenate",)),
    _np("np_split", lambda x: fnp.split(x, [1, 3], axis=1),
        lambda x: jnp.split(x, [1, 3], axis=1), [_arg(2, 5)], ("slice",)),
    _np("np_split_sections", lambda x: fnp.split(x, 3), lambda x: jnp.split(x, 3),
        [_arg(6, 2)], ("slice",)),
    _np("np_array_split", lambda x: fnp.array_split(x, 3, axis=-1),
        lambda x: jnp.array_split(x, 3, axis=-1), [_arg(2, 7)], ("slice",)),
    _np("np_tile", lambda x: fnp.tile(x, (2, 1, 3)), lambda x: jnp.tile(x, (2, 1, 3)),
        [_arg(2, 3)], ("broadcast_in_dim", "reshape")),
    _np("np_repeat_int", lambda x: fnp.repeat(x, 2, axis=0),
        lambda x: jnp.repeat(x, 2, axis=0), [_arg(3, 2)], ("broadcast_in_dim", "reshape")),
    _np("np_repeat_counts", lambda x: fnp.repeat(x, [2, 0, 1, 3], axis=1),
        lambda x: jnp.repeat(x, np.array([2, 0, 1, 3]), axis=1), [_arg(2, 4)],
        ("slice", "broadcast_in_dim", "concatenate")),
    _np("np_repeat_flat", lambda x: fnp.repeat(x, 3), lambda x: jnp.repeat(x, 3),
        [_arg(2, 2)], ("broadcast_in_dim", "reshape")),
    _np("np_pad_constant", lambda x: fnp.pad(x, ((1, 2), (0, 3))),
        lambda x: jnp.pad(x, ((1, 2), (0, 3))), [_arg(2, 3)], ("pad",)),
    _np("np_pad_constant_values", lambda x: fnp.pad(x, 1, constant_values=((1, 2), (3, 4))),
        lambda x: jnp.pad(x, 1, constant_values=((1, 2), (3, 4))), [_arg(2, 3)], ("pad",),
        linear=False),
    _np("np_pad_edge", lambda x: fnp.pad(x, (2, 1), mode="edge"),
        lambda x: jnp.pad(x, (2, 1), mode="edge"), [_arg(3, 2)],
        ("slice", "broadcast_in_dim", "concatenate")),
    _np("np_pad_reflect", lambda x: fnp.pad(x, ((4, 1), (0, 2)), mode="reflect"),
        lambda x: jnp.pad(x, ((4, 1), (0, 2)), mode="reflect"), [_arg(3, 3)],
        ("slice", "rev", "concatenate")),
    _np("np_pad_reflect_odd", lambda x: fnp.pad(x, 3, mode="reflect", reflect_type="odd"),
        lambda x: jnp.pad(x, 3, mode="reflect", reflect_type="odd"), [_arg(4)],
        ("slice", "rev", "concatenate", "sub")),
    _np("np_pad_symmetric", lambda x: fnp.pad(x, ((5, 2),), mode="symmetric"),
        lambda x: jnp.pad(x, ((5, 2),), mode="symmetric"), [_arg(3)],
        ("slice", "rev", "concatenate")),
    _np("np_pad_wrap", lambda x: fnp.pad(x, ((4, 1), (1, 0)), mode="wrap"),
        lambda x: jnp.pad(x, ((4, 1), (1, 0)), mode="wrap"), [_arg(3, 2)],
        ("slice", "concatenate")),
    _np("np_flip", fnp.flip, jnp.flip, [_arg(2, 3)], ("rev",)),
    _np("np_flip_axes", lambda x: fnp.flip(x, (0, -1)), lambda x: jnp.flip(x, (0, -1)),
        [_arg(2, 3, 2)], ("rev",)),
    _np("np_fliplr", fnp.fliplr, jnp.fliplr, [_arg(2, 3)], ("rev",)),
    _np("np_flipud", fnp.flipud, jnp.flipud, [_arg(2, 3)], ("rev",)),
    _np("np_roll", lambda x: fnp.roll(x, (1, -4), (0, 1)), lambda x: jnp.roll(x, (1, -4), (0, 1)),
        [_arg(3, 5)], ("slice", "concatenate")),
    _np("np_roll_flat", lambda x: fnp.roll(x, 4), lambda x: jnp.roll(x, 4), [_arg(2, 3)],
        ("slice", "concatenate", "reshape")),
    _np("np_rot90", fnp.rot90, jnp.rot90, [_arg(2, 3)], ("rev", "transpose")),
    _np("np_rot90_k3", lambda x: fnp.rot90(x, 3, (2, 0)), lambda x: jnp.rot90(x, 3, (2, 0)),
        [_arg(2, 3, 4)], ("rev", "transpose")),
    _np("np_atleast_1d", fnp.atleast_1d, jnp.atleast_1d, [_arg()], ("reshape",)),
    _np("np_atleast_2d", fnp.atleast_2d, jnp.atleast_2d, [_arg(3)], ("reshape",)),
    _np("np_atleast_3d", fnp.atleast_3d, jnp.atleast_3d, [_arg(2, 3)], ("reshape",)),
]
# fmt: on

RECORDS: list[Rec] = LAX_RECORDS + NUMPY_RECORDS
