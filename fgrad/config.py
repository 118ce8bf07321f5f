"""Global configuration: a handful of flags that change how fgrad behaves.

``fgrad.config.update("enable_x64", True)`` keeps 64-bit dtypes (float64,
int64) instead of narrowing them to 32 bits, exactly like JAX's flag of the
same name. Flags can also be set from the environment before import
(``FGRAD_ENABLE_X64=1``, ``JAX_ENABLE_X64=1`` is honoured too).
"""

from __future__ import annotations

import os


def _env_flag(*names: str) -> bool:
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            return value.strip().lower() in ("1", "true", "yes", "on")
    return False


class Config:
    """The flags; read them as attributes, change them with :meth:`update`."""

    def __init__(self) -> None:
        self.enable_x64: bool = _env_flag("FGRAD_ENABLE_X64", "JAX_ENABLE_X64")
        # Which jit backend runs staged functions when none is named.
        self.default_backend: str | None = os.environ.get("FGRAD_BACKEND") or None
        # Run every jitted function op by op instead (like JAX_DISABLE_JIT).
        self.disable_jit: bool = _env_flag("FGRAD_DISABLE_JIT", "JAX_DISABLE_JIT")

    _ALIASES = {"jax_enable_x64": "enable_x64", "jax_disable_jit": "disable_jit"}

    def update(self, name: str, value: object) -> None:
        """Set flag ``name`` (``"enable_x64"``, ``"default_backend"``, ``"disable_jit"``)."""
        name = self._ALIASES.get(name, name)
        if name not in ("enable_x64", "default_backend", "disable_jit"):
            raise ValueError(f"fgrad.config.update: unknown flag {name!r}")
        setattr(self, name, value)

    def read(self, name: str) -> object:
        return getattr(self, self._ALIASES.get(name, name))


config = Config()
