"""Utilities: the global gradient norm, norm clipping, and optimizer-state (de)serialization.

``OptimizerState`` keeps its inner states flattened (``base.py``), which is fast but
awkward to save: the structures live in treedefs, not in the data.
``unpack_optimizer_state`` turns a state into an ordinary pytree shaped like the
parameters, each leaf a ``JoinPoint`` wrapping that parameter's inner state (e.g.
Adam's ``(x, m, v)``), ready for pickling or any pytree serializer;
``pack_optimizer_state`` is its inverse. ``JoinPoint`` is deliberately NOT a registered
pytree node, so flattening the outer tree stops at it.

Read next: ``fgrad/optimizers/__init__.py`` (the public list).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fgrad.numpy as fnp
from fgrad.core.pytree import tree_flatten, tree_map, tree_unflatten
from fgrad.optimizers.base import OptimizerState

__all__ = ["JoinPoint", "clip_grads", "l2_norm", "pack_optimizer_state",
           "unpack_optimizer_state"]  # fmt: skip


def l2_norm(tree: Any) -> Any:
    """The l2 norm of a pytree of arrays, ``sqrt(sum of vdot(x, x) over leaves)``.

    >>> import fgrad.numpy as fnp
    >>> float(l2_norm({"a": fnp.array([3.0]), "b": fnp.array([[4.0]])}))
    5.0
    """
    leaves, _ = tree_flatten(tree)
    return fnp.sqrt(sum(fnp.vdot(x, x) for x in leaves))


def clip_grads(grad_tree: Any, max_norm: Any) -> Any:
    """Rescale ``grad_tree`` so its l2 norm is at most ``max_norm``.

    Every leaf is multiplied by ``max_norm / l2_norm(grad_tree)`` when the norm is at
    least ``max_norm``, and left alone otherwise (a ``where``, so it works under jit).

    >>> import fgrad.numpy as fnp
    >>> clip_grads([fnp.array([3.0, 4.0])], 1.0)
    [Array([0.6, 0.8], dtype=float32)]
    """
    norm = l2_norm(grad_tree)

    def normalize(g: Any) -> Any:
        return fnp.where(norm < max_norm, g, g * (max_norm / norm))

    return tree_map(normalize, grad_tree)


class JoinPoint:
    """Marks the boundary between two joined (nested) pytrees: holds one inner tree."""

    def __init__(self, subtree: Any) -> None:
        self.subtree = subtree

    def __iter__(self) -> Iterator[Any]:
        # Pytrees are containers of arrays, so a JoinPoint looks iterable (as in JAX).
        yield self.subtree

    def __repr__(self) -> str:
        return f"JoinPoint({self.subtree!r})"


def unpack_optimizer_state(opt_state: OptimizerState) -> Any:
    """An ``OptimizerState`` as a parameter-shaped pytree of ``JoinPoint`` leaves.

    Args:
      opt_state: a state made by an optimizer's ``init_fun`` / ``update_fun``.

    Returns:
      A pytree with the parameters' structure whose leaves are ``JoinPoint``s holding
      each parameter's inner state (useful for serialization).
    """
    states_flat, tree_def, subtree_defs = opt_state
    subtrees = [tree_unflatten(s, flat) for s, flat in zip(subtree_defs, states_flat, strict=True)]
    return tree_unflatten(tree_def, [JoinPoint(subtree) for subtree in subtrees])


def pack_optimizer_state(marked_pytree: Any) -> OptimizerState:
    """The inverse of :func:`unpack_optimizer_state`.

    Args:
      marked_pytree: a pytree whose leaves are all ``JoinPoint``s.

    Returns:
      The equivalent ``OptimizerState``.

    Raises:
      TypeError: if some leaf is not a ``JoinPoint``.
    """
    sentinels, tree_def = tree_flatten(marked_pytree)
    bad = [type(s).__name__ for s in sentinels if not isinstance(s, JoinPoint)]
    if bad:
        # JAX only asserts here; a TypeError that names the culprits is more useful.
        raise TypeError(f"pack_optimizer_state: every leaf must be a JoinPoint, got {bad}")
    flat = [tree_flatten(s.subtree) for s in sentinels]
    states_flat = tuple(leaves for leaves, _ in flat)
    subtree_defs = tuple(treedef for _, treedef in flat)
    return OptimizerState(states_flat, tree_def, subtree_defs)
