"""``fgrad.numpy``: numpy's API over fgrad's strict primitives (``import fgrad.numpy as fnp``).

Functions here accept what numpy accepts (Python scalars, mixed dtypes,
broadcastable shapes, negative axes) and follow JAX's rules where numpy and
JAX differ: float32 by default, weakly typed Python scalars, immutable arrays
(``x.at[i].set(v)`` instead of ``x[i] = v``), out-of-bounds gathers clamp.

Each submodule defines ``__all__``; this package re-exports them all.
"""

from fgrad.numpy._creation import *  # noqa: F401, F403
from fgrad.numpy._ufuncs import *  # noqa: F401, F403
from fgrad.numpy._logic import *  # noqa: F401, F403
from fgrad.numpy._reductions import *  # noqa: F401, F403
from fgrad.numpy._shape import *  # noqa: F401, F403
from fgrad.numpy._indexing import *  # noqa: F401, F403
from fgrad.numpy._linalg_ops import *  # noqa: F401, F403
from fgrad.numpy import linalg  # noqa: F401
from fgrad.core.array import Array as ndarray  # noqa: F401
from fgrad.core.dtypes import bfloat16  # noqa: F401
from numpy import (  # noqa: F401  (dtype objects, as jax.numpy re-exports them)
    bool_, float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32,
    uint64, pi, e, inf, nan, newaxis, dtype)  # finfo/iinfo: _creation (bfloat16 too)

from fgrad.numpy import _array  # noqa: E402, F401  (installs operators on Array and Tracer)
