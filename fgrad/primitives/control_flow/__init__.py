"""Structured control flow as primitives: ``cond``/``switch``, ``while_loop``/``fori_loop``,
``scan``/``map``. Each holds closed jaxprs in its params and has every rule.
"""

from fgrad.primitives.control_flow.conditionals import *  # noqa: F401, F403
from fgrad.primitives.control_flow.loops import *  # noqa: F401, F403
from fgrad.primitives.control_flow.scan import *  # noqa: F401, F403
