"""fgrad's vocabulary: every primitive, one family per module.

Importing this package registers them all. Each family file holds, for each
primitive, its strict wrapper and every rule side by side; start reading at
``rules.py`` (the constructors) and ``elementwise.py``.
"""

from fgrad.primitives import rules  # noqa: F401
from fgrad.primitives import elementwise, shape, reductions  # noqa: F401
from fgrad.primitives import indexing, linalg, conv, windowed, random  # noqa: F401
from fgrad.primitives import custom_derivatives, control_flow  # noqa: F401
from fgrad.core.primitive import all_primitives  # noqa: F401
