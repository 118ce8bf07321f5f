"""``fgrad.lax``: the strict wrappers of fgrad's primitives (``jax.lax``'s names).

Strict means: no implicit broadcasting or promotion (binary operands have
equal shapes and dtypes), axes are non-negative and normalized. ``fgrad.numpy``
is the lenient layer on top. Structured control flow (``cond``, ``switch``,
``while_loop``, ``fori_loop``, ``scan``, ``map``) lives in
``fgrad/primitives/control_flow``.
"""

from fgrad.primitives.custom_derivatives import stop_gradient  # noqa: F401
from fgrad.primitives.elementwise import *  # noqa: F401, F403
from fgrad.primitives.shape import *  # noqa: F401, F403
from fgrad.primitives.reductions import *  # noqa: F401, F403
from fgrad.primitives.indexing import *  # noqa: F401, F403
from fgrad.primitives.linalg import *  # noqa: F401, F403
from fgrad.primitives.conv import *  # noqa: F401, F403
from fgrad.primitives.windowed import *  # noqa: F401, F403
from fgrad.primitives.control_flow import *  # noqa: F401, F403
from fgrad.primitives.random import (  # noqa: F401
    bitcast_convert_type, shift_left, shift_right_logical)
