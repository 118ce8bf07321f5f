"""Public error types (``jax.errors``' names): see ``fgrad/core/errors.py``."""

from fgrad.core.errors import (  # noqa: F401
    ConcretizationTypeError, JaxprTypeError, NonConcreteBooleanIndexError,
    TracerArrayConversionError, TracerBoolConversionError, TracerIntegerConversionError,
    UnexpectedTracerError)
