"""``fgrad.scipy``: the parts of ``jax.scipy`` fgrad implements (``special`` so far)."""

from fgrad.scipy import special  # noqa: F401

__all__ = ["special"]
