"""``fgrad.extend``: the public API for adding your own primitives (like ``jax.extend``).

A primitive is a name plus a table of rules (see ``fgrad/core/primitive.py``).
Everything needed to write one from user code is re-exported here, so
extensions do not reach into private modules:

* ``Primitive`` and the rule constructors that the built-in families use:
  ``standard_primitive`` (impl + shape/dtype/weak-type rules), ``defjvp``,
  ``defjvp2``, ``deflinear``, ``defbilinear``, ``defjvp_zero``, and the
  batching constructors ``defvectorized``, ``defbroadcasting``,
  ``defreducer``; ``UndefPrimal`` (what a transpose rule receives for its
  linear operands) and ``ShapedArray`` (what abstract evaluation returns);
* ``fgrad.extend.lowering``: what a ``lower`` rule for ``jit(backend="cpu")``
  (and the CUDA backends, which print the same kernel IR) is written with:
  lazy values (``elementwise``, ``reindex``), the scalar-op vocabulary
  (``ScalarOp``, ``alu``) and index conditions (``lt``, ``ge``, ``eq``,
  ``all_of``).

``examples/notebooks/04_write_your_own_primitive.ipynb`` walks through a
complete primitive, rule by rule.
"""

from __future__ import annotations

from fgrad.core.ad_util import UndefPrimal
from fgrad.core.avals import ShapedArray
from fgrad.core.primitive import Primitive
from fgrad.primitives.rules import (
    defbilinear, defbroadcasting, defjvp, defjvp2, defjvp_zero, deflinear, defreducer,
    defvectorized, standard_primitive)

from fgrad.extend import lowering  # noqa: E402  (the submodule, for `fgrad.extend.lowering`)

__all__ = ["Primitive", "ShapedArray", "UndefPrimal", "standard_primitive", "defjvp",
           "defjvp2", "defjvp_zero", "deflinear", "defbilinear", "defvectorized",
           "defbroadcasting", "defreducer", "lowering"]
