"""The CPU backend against eager execution, record by record (the op table).

Every op-table record runs through ``jit(fn, backend="cpu")`` and through
eager evaluation (each primitive's numpy impl) on the same drawn values.
Floats agree to a few ulps (the compiled code sums sequentially where
numpy sums pairwise, and calls libm where numpy has its own loops);
integers and booleans agree exactly. A record whose primitives are not all
lowered yet must fail with ``LoweringError`` naming the primitive: never a
wrong number, never a crash.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fgrad
import op_table
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr
from fgrad.lowering.schedule import LoweringError
from fgrad.tree_util import tree_leaves
from op_table import Rec, args_strategy

RECORDS = op_table.all_records()
# Two draws per record in CI (each record compiles once; the second draw reuses the
# compiled program), more in nightly; random programs are tested in test_cpu_backend.py.
EXAMPLES = max(1, hypothesis.settings.default.max_examples // 10)
TOL = {np.dtype(np.float16): 4e-3, np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def _prims(closed: ClosedJaxpr | Jaxpr, out: set[Any]) -> set[Any]:
    inner = closed.jaxpr if isinstance(closed, ClosedJaxpr) else closed
    for eqn in inner.eqns:
        out.add(eqn.primitive)
        for p in eqn.params.values():
            if isinstance(p, (ClosedJaxpr, Jaxpr)):
                _prims(p, out)
    return out


@pytest.mark.parametrize("rec", RECORDS, ids=[r.name for r in RECORDS])
@hypothesis.settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_cpu_backend_matches_eager(rec: Rec, data: Any) -> None:
    dtype = np.dtype(rec.dtypes[0])
    values = data.draw(args_strategy(rec, dtype))
    dyn = [i for i, a in enumerate(rec.args) if a.kind != "const"]

    def f(*xs: Any) -> Any:
        full = list(values)
        for i, x in zip(dyn, xs):
            full[i] = x
        return rec.fn(*full)

    args = [values[i] for i in dyn]
    want = tree_leaves(f(*args))
    jitted = fgrad.jit(f, backend="cpu")
    lowerable = all(p.lower is not None for p in _prims(fgrad.make_jaxpr(f)(*args), set()))
    if not lowerable:
        with pytest.raises(LoweringError, match="no lowering for primitive"):
            jitted(*args)
        return
    got = tree_leaves(jitted(*args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype), rec.name
        if w.dtype.kind == "f":
            tol = TOL.get(w.dtype, 1e-5) if rec.rtol is None else max(rec.rtol, TOL[w.dtype])
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True,
                                       err_msg=rec.name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=rec.name)
