"""fnp.sum's eager fast path must agree exactly with the general (traced) path."""

import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp

CASES = [((3, 4), None, False), ((3, 4), 0, True), ((3, 4), -1, False), ((), None, True),
         ((0, 3), 0, False), ((2, 3, 4), 1, True), ((5,), (0,), False)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,keepdims", CASES)
@pytest.mark.parametrize("weak", [False, True])
def test_eager_sum_matches_jit(x64, dtype, shape, axis, keepdims, weak):
    x = fgrad.Array(np.asarray(np.random.RandomState(0).randn(*shape)).astype(dtype), weak)
    eager = fnp.sum(x, axis=axis, keepdims=keepdims)
    staged = fgrad.jit(lambda y: fnp.sum(y, axis=axis, keepdims=keepdims))(x)
    assert (eager.dtype, eager.shape, eager.weak_type) == (staged.dtype, staged.shape,
                                                           staged.weak_type)
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(staged))


def test_eager_sum_bad_axis_still_raises():
    with pytest.raises(Exception, match="axis"):
        fnp.sum(fnp.ones((2, 3)), axis=2)
