"""Tests for fgrad.core.dtypes: canonicalization, weak types, and promotion against JAX.

JAX is the oracle: every pair of (dtype, weak_type) operands is promoted by both
libraries, with x64 off and on, and must agree on dtype and weak type.
"""

from __future__ import annotations

import contextlib
import itertools
import types
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax._src import dtypes as jax_dtypes
from jax._src.lax.lax import _convert_element_type  # the one way to make a weak JAX array

from fgrad.config import config
from fgrad.core import dtypes

ALL = list(dtypes.SUPPORTED_DTYPES)
OPERANDS = [(dt, weak) for dt in ALL for weak in (False, True)]


@contextlib.contextmanager
def x64_mode(value: bool) -> Iterator[None]:
    """Set fgrad's and JAX's enable_x64 together, restoring both afterwards."""
    old_fgrad, old_jax = config.enable_x64, jax.config.jax_enable_x64
    config.update("enable_x64", value)
    jax.config.update("jax_enable_x64", value)
    try:
        yield
    finally:
        config.update("enable_x64", old_fgrad)
        jax.config.update("jax_enable_x64", old_jax)


@pytest.fixture(params=[False, True], ids=["x32", "x64"])
def x64(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run the test once with x64 off and once with it on."""
    with x64_mode(request.param):
        yield request.param


def jax_operand(dtype: np.dtype, weak: bool) -> Any:
    """A real JAX array with this dtype and weak type (dtype canonicalized as JAX would)."""
    dt = jax_dtypes.canonicalize_dtype(dtype)
    return _convert_element_type(np.zeros((), dt), dt, weak_type=weak)


def jax_result(*operands: tuple[np.dtype, bool]) -> tuple[np.dtype, bool]:
    args = [jax_operand(dt, weak) for dt, weak in operands]
    return jax_dtypes.result_type(*args, return_weak_type_flag=True)


# --- promotion against JAX --------------------------------------------------------------------


def test_operand_set_covers_the_lattice() -> None:
    names = {dtypes.short_name(dt) for dt in ALL}
    assert names == {"bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
                     "f16", "bf16", "f32", "f64"}  # fmt: skip


@pytest.mark.parametrize("first", OPERANDS, ids=lambda p: f"{p[0]}{'-weak' if p[1] else ''}")
def test_result_type_of_pairs_matches_jax(x64: bool, first: tuple[np.dtype, bool]) -> None:
    mismatches = []
    for second in OPERANDS:
        ours, theirs = dtypes.result_type(first, second), jax_result(first, second)
        if ours != theirs or type(ours[1]) is not bool:
            mismatches.append(f"{first} v {second}: fgrad {ours}, jax {theirs}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("operand", OPERANDS, ids=lambda p: f"{p[0]}{'-weak' if p[1] else ''}")
def test_result_type_of_one_operand_matches_jax(x64: bool, operand: tuple[np.dtype, bool]) -> None:
    assert dtypes.result_type(operand) == jax_result(operand)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(OPERANDS), min_size=3, max_size=5), st.booleans())
def test_result_type_of_many_operands_matches_jax(operands: list[Any], use_x64: bool) -> None:
    with x64_mode(use_x64):
        assert dtypes.result_type(*operands) == jax_result(*operands)


def test_promote_types_matches_jax_on_canonical_inputs(x64: bool) -> None:
    for a, b in itertools.product(ALL, ALL):
        ca, cb = dtypes.canonicalize_dtype(a), dtypes.canonicalize_dtype(b)
        expected = jax_dtypes.canonicalize_dtype(jnp.promote_types(ca, cb))
        assert dtypes.promote_types(a, b) == expected, (a, b)


def test_promote_types_examples() -> None:
    assert dtypes.promote_types(np.int8, np.uint8) == np.int16
    assert dtypes.promote_types(np.float16, dtypes.bfloat16) == np.float32
    assert dtypes.promote_types(bool, np.uint16) == np.uint16
    assert dtypes.promote_types(np.int32, np.float16) == np.float16  # JAX, not numpy


def test_weak_scalars_do_not_widen(x64: bool) -> None:
    assert dtypes.result_type((np.float16, False), (float, True)) == (np.float16, False)
    assert dtypes.result_type((np.uint8, False), (int, True)) == (np.uint8, False)
    weak_float, weak_int = (dtypes.default_float_dtype(), True), (dtypes.default_int_dtype(), True)
    assert dtypes.result_type((np.int8, False), (float, True)) == weak_float
    assert dtypes.result_type((bool, False), (int, True)) == weak_int


def test_u64_and_i64_meet_at_weak_float() -> None:
    # NOTE: JAX's lattice has no int above both, so the join is the weak float f*.
    with x64_mode(True):
        assert dtypes.result_type((np.uint64, False), (np.int64, False)) == (np.float64, True)
        assert dtypes.promote_types(np.uint64, np.int64) == np.float64
        assert jax_result((np.uint64, False), (np.int64, False)) == (np.float64, True)


@pytest.mark.parametrize("value", [True, 3, -7, 2.5, np.float16(1), np.int8(3), np.uint64(3)])
def test_result_type_with_python_and_numpy_values_matches_jax(x64: bool, value: Any) -> None:
    for dt in ALL:
        ours = dtypes.result_type(dtypes.dtype_and_weak_type(value), (dt, False))
        theirs = jax_dtypes.result_type(value, jax_operand(dt, False), return_weak_type_flag=True)
        assert ours == theirs, (value, dt)


def test_result_type_reads_x64_at_call_time() -> None:
    operands = ((np.float64, False), (np.int8, False))
    with x64_mode(False):
        assert dtypes.result_type(*operands) == (np.float32, False)
        config.update("enable_x64", True)  # flipped without re-importing anything
        assert dtypes.result_type(*operands) == (np.float64, False)
        assert dtypes.default_float_dtype() == np.float64


def test_result_type_is_memoized() -> None:
    pair = ((np.dtype(np.float32), False), (np.dtype(np.int32), True))
    assert dtypes.result_type(*pair) is dtypes.result_type(*pair)


def test_result_type_needs_an_operand() -> None:
    with pytest.raises(ValueError):
        dtypes.result_type()


# --- canonicalization and defaults ------------------------------------------------------------


def test_canonicalize_matches_jax(x64: bool) -> None:
    for dt in ALL:
        assert dtypes.canonicalize_dtype(dt) == jax_dtypes.canonicalize_dtype(dt), dt
    for like in (float, int, bool, "float64", np.int64, "bfloat16", np.uint64):
        assert dtypes.canonicalize_dtype(like) == jax_dtypes.canonicalize_dtype(like), like
    assert isinstance(dtypes.canonicalize_dtype(float), np.dtype)


def test_canonicalize_narrows_without_x64() -> None:
    with x64_mode(False):
        assert dtypes.canonicalize_dtype(np.float64) == np.float32
        assert dtypes.canonicalize_dtype("int64") == np.int32
        assert dtypes.canonicalize_dtype(np.uint64) == np.uint32
        assert dtypes.canonicalize_dtype(np.float16) == np.float16
        assert dtypes.canonicalize_dtype(float) == np.float32
    with x64_mode(True):
        assert dtypes.canonicalize_dtype(np.float64) == np.float64
        assert dtypes.canonicalize_dtype(int) == np.int64


@pytest.mark.parametrize("bad", ["complex64", np.complex128, complex])
def test_complex_is_rejected_by_name(bad: Any) -> None:
    with pytest.raises(TypeError, match="complex"):
        dtypes.canonicalize_dtype(bad)


def test_other_unsupported_dtypes_are_rejected() -> None:
    for bad in ("U3", object, ml_dtypes.float8_e4m3fn):
        with pytest.raises(TypeError, match=str(np.dtype(bad))):
            dtypes.canonicalize_dtype(bad)


def test_defaults(x64: bool) -> None:
    assert dtypes.default_float_dtype() == jax_dtypes.default_float_dtype()
    assert dtypes.default_int_dtype() == jax_dtypes.default_int_dtype()
    assert dtypes.default_uint_dtype() == jax_dtypes.default_uint_dtype()
    assert dtypes.default_float_dtype() == (np.float64 if x64 else np.float32)


# --- dtype of a value -------------------------------------------------------------------------


def test_dtype_and_weak_type_of_python_scalars(x64: bool) -> None:
    assert dtypes.dtype_and_weak_type(True) == (np.dtype(bool), False)
    assert dtypes.dtype_and_weak_type(3) == (dtypes.default_int_dtype(), True)
    assert dtypes.dtype_and_weak_type(3.0) == (dtypes.default_float_dtype(), True)
    for value in (True, 3, 3.0, -(2**31)):
        assert dtypes.dtype_and_weak_type(value) == jax_dtypes._dtype_and_weaktype(value)


def test_dtype_and_weak_type_of_numpy_values(x64: bool) -> None:
    for dt in ALL:
        for value in (np.zeros((2,), dt), np.zeros((), dt)[()]):
            assert dtypes.dtype_and_weak_type(value) == (dtypes.canonicalize_dtype(dt), False)
            assert dtypes.dtype_and_weak_type(value) == jax_dtypes._dtype_and_weaktype(value)


def test_dtype_and_weak_type_of_avals_and_arrays() -> None:
    aval = types.SimpleNamespace(shape=(), dtype=np.dtype(np.float16), weak_type=True)
    assert dtypes.dtype_and_weak_type(aval) == (np.float16, True)
    # Anything with .dtype and .weak_type reports its own, e.g. a JAX array.
    assert dtypes.dtype_and_weak_type(jnp.asarray(1.0)) == (np.float32, True)
    assert dtypes.dtype_and_weak_type(jnp.ones(2, jnp.bfloat16)) == (dtypes.bfloat16, False)


def test_python_int_overflow(x64: bool) -> None:
    limit = 2**63 if x64 else 2**31
    assert dtypes.dtype_and_weak_type(limit - 1)[0] == dtypes.default_int_dtype()
    assert dtypes.dtype_and_weak_type(-limit)[0] == dtypes.default_int_dtype()
    for too_big in (limit, -limit - 1, 2**100):
        with pytest.raises(OverflowError, match=str(too_big)):
            dtypes.dtype_and_weak_type(too_big)
        with pytest.raises(OverflowError):  # JAX agrees
            jnp.asarray(too_big)


def test_complex_values_are_rejected() -> None:
    with pytest.raises(TypeError, match="complex"):
        dtypes.dtype_and_weak_type(1 + 2j)
    with pytest.raises(TypeError, match="complex"):
        dtypes.dtype_and_weak_type(np.zeros(2, np.complex64))


# --- predicates and info ----------------------------------------------------------------------


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_predicates_match_jax(dt: np.dtype) -> None:
    assert dtypes.is_float(dt) == jnp.issubdtype(dt, jnp.floating)
    assert dtypes.is_inexact(dt) == jnp.issubdtype(dt, jnp.inexact)
    assert dtypes.is_int(dt) == jnp.issubdtype(dt, jnp.integer)
    assert dtypes.is_unsigned(dt) == jnp.issubdtype(dt, jnp.unsignedinteger)
    assert dtypes.is_bool(dt) == (dt == np.dtype(bool))
    assert dtypes.short_name(dt) == jax_dtypes.short_dtype_name(dt)


def test_finfo_and_iinfo() -> None:
    assert dtypes.is_float(dtypes.bfloat16) and dtypes.is_float("bfloat16")
    assert float(dtypes.finfo(dtypes.bfloat16).eps) == float(jnp.finfo(jnp.bfloat16).eps)
    assert float(dtypes.finfo(np.float32).max) == float(np.finfo(np.float32).max)
    assert dtypes.iinfo(np.uint8).max == 255 and dtypes.iinfo("int16").min == -(2**15)
    with pytest.raises(TypeError):
        dtypes.finfo(np.int32)
    with pytest.raises(TypeError):
        dtypes.iinfo(np.float32)
    with pytest.raises(TypeError):
        dtypes.iinfo(bool)


def test_short_names() -> None:
    expected = {np.float32: "f32", dtypes.bfloat16: "bf16", np.uint64: "u64", bool: "bool"}
    for dt, name in expected.items():
        assert dtypes.short_name(dt) == name
