"""Pytree utilities (JAX's ``jax.tree_util``): the public face of ``fgrad/core/pytree.py``.

Read ``core/pytree.py`` for what a pytree is and how flattening orders leaves.
"""

from __future__ import annotations

from fgrad.core.pytree import (
    PyTreeDef,
    flatten_up_to,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_reduce,
    tree_structure,
    tree_transpose,
    tree_unflatten,
    treedef_children,
    treedef_is_leaf,
)

__all__ = [
    "PyTreeDef",
    "flatten_up_to",
    "register_pytree_node",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_reduce",
    "tree_structure",
    "tree_transpose",
    "tree_unflatten",
    "treedef_children",
    "treedef_is_leaf",
]
