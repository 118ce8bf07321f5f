"""fgrad: composable function transformations (grad, vmap, jit) for numpy-style Python.

Read the pipeline in this order: ``core`` (the language: avals, tracers,
jaxprs), ``primitives`` (the vocabulary and its rules), ``transforms`` (the
interpreters: jvp, linearize/transpose, jit), ``lowering`` (backends).
"""

from fgrad import primitives as _primitives  # noqa: F401  (registers every primitive)
from fgrad import numpy as _numpy  # noqa: F401  (installs array operators)
from fgrad.lowering import backends as _backends  # noqa: F401  (registers jit backends)
from fgrad.config import config
from fgrad.core.array import Array
from fgrad.core.avals import ShapeDtypeStruct, ShapedArray
from fgrad.core.errors import (
    ConcretizationTypeError, NonConcreteBooleanIndexError, TracerArrayConversionError,
    TracerBoolConversionError, TracerIntegerConversionError, UnexpectedTracerError)
from fgrad.primitives.custom_derivatives import (
    checkpoint, custom_jvp, custom_vjp, remat, stop_gradient)
from fgrad.transforms.api import eval_shape, make_jaxpr
from fgrad.transforms.grad import (
    grad, hessian, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp)
from fgrad.transforms.jit import jit
from fgrad.lowering.cuda.device import devices, device_put
from fgrad.transforms.vmap import vmap
from fgrad import tree_util  # noqa: F401
from fgrad import random  # noqa: F401
from fgrad import optimizers  # noqa: F401
from fgrad import data  # noqa: F401
from fgrad import nn  # noqa: F401
from fgrad import nn_stax  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "Array", "ShapeDtypeStruct", "ShapedArray", "config", "grad", "value_and_grad", "jvp",
    "vjp", "linearize", "vmap", "jacfwd", "jacrev", "hessian", "jit", "make_jaxpr", "eval_shape",
    "devices", "device_put",
    "custom_jvp", "custom_vjp", "checkpoint", "remat", "stop_gradient",
    "ConcretizationTypeError", "TracerBoolConversionError", "TracerIntegerConversionError",
    "TracerArrayConversionError", "NonConcreteBooleanIndexError", "UnexpectedTracerError",
]
