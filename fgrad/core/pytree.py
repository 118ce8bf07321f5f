"""Pytrees: nested containers of arrays, flattened to a list of leaves plus a structure.

Transforms take and return *pytrees*: nested tuples, lists, dicts, None, namedtuples,
OrderedDicts, defaultdicts and registered types; anything else is a leaf. ``tree_flatten``
splits one into its leaves (depth first) and a hashable ``PyTreeDef`` (part of jit's cache
key), so transforms work on flat lists of arrays and ``tree_unflatten`` rebuilds the
caller's structure. As in JAX, dict children are ordered by *sorted* key, None is a node
with no children (not a leaf), and only exactly registered types are nodes (a dict
subclass is a leaf), namedtuples aside. Public face: ``fgrad/tree_util.py``.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

IsLeaf = Callable[[Any], bool] | None  # optional predicate: True stops flattening there


class _NodeKind(NamedTuple):
    name: str  # used by __str__
    flatten: Callable[[Any], tuple[Iterable[Any], Any]]  # node -> (children, aux_data)
    unflatten: Callable[[Any, list[Any]], Any]  # (aux_data, children) -> node


# Node kind per exact type: one dict lookup on type(x) is what keeps flattening fast.
_registry: dict[type, _NodeKind] = {}


def register_pytree_node(nodetype: type, flatten_fn: Callable[[Any], tuple[Iterable[Any], Any]],
                         unflatten_fn: Callable[[Any, Iterable[Any]], Any]) -> None:  # fmt: skip
    """Make ``nodetype`` a pytree node rather than a leaf (its subclasses stay leaves).

    ``flatten_fn(x) -> (children, aux_data)``, with aux_data hashable and comparable;
    ``unflatten_fn(aux_data, children) -> x``. Raises ValueError if already registered.

    >>> class Pair(tuple): pass  # a leaf until registered (it has no _fields)
    >>> register_pytree_node(Pair, lambda p: (p, None), lambda _, children: Pair(children))
    >>> tree_leaves(Pair((1, (2, 3))))
    [1, 2, 3]
    """
    if nodetype in _registry:
        raise ValueError(f"Duplicate pytree node registration for {nodetype}.")
    _registry[nodetype] = _NodeKind(nodetype.__name__, flatten_fn, unflatten_fn)


def _flatten_dict(d: dict[Any, Any]) -> tuple[list[Any], tuple[Any, ...]]:
    try:
        keys = tuple(sorted(d))
    except TypeError as e:  # e.g. {1: ..., "a": ...}; JAX refuses these too
        raise ValueError(f"pytree dict keys must be sortable; got keys {list(d)}") from e
    return [d[k] for k in keys], keys


def _flatten_defaultdict(d: collections.defaultdict[Any, Any]) -> tuple[list[Any], Any]:
    values, keys = _flatten_dict(d)
    return values, (d.default_factory, keys)  # the factory is part of the structure


_registry[tuple] = _NodeKind("tuple", lambda x: (x, None), lambda _, ch: tuple(ch))
_registry[list] = _NodeKind("list", lambda x: (x, None), lambda _, ch: list(ch))
_registry[type(None)] = _NodeKind("None", lambda x: ((), None), lambda _, ch: None)
_registry[dict] = _NodeKind("dict", _flatten_dict, lambda ks, ch: dict(zip(ks, ch, strict=True)))
_registry[collections.OrderedDict] = _NodeKind(  # insertion order is part of the structure
    "OrderedDict", lambda x: (list(x.values()), tuple(x)),
    lambda keys, ch: collections.OrderedDict(zip(keys, ch, strict=True)))  # fmt: skip
_registry[collections.defaultdict] = _NodeKind(
    "defaultdict", _flatten_defaultdict,
    lambda aux, ch: collections.defaultdict(aux[0], zip(aux[1], ch, strict=True)))  # fmt: skip
# Namedtuples are recognized by shape (a tuple with _fields), not registered one by one.
# Their aux_data is the class itself, so two namedtuple types never compare equal.
_NAMEDTUPLE = _NodeKind("namedtuple", lambda x: (x, type(x)), lambda cls, ch: cls(*ch))


def _kind_of(x: Any) -> _NodeKind | None:  # None means x is a leaf
    kind = _registry.get(type(x))
    is_namedtuple = kind is None and isinstance(x, tuple) and hasattr(x, "_fields")
    return _NAMEDTUPLE if is_namedtuple else kind


class PyTreeDef:
    """A pytree's containers, leaves left out; immutable, hashable, printed as JAX does."""

    __slots__ = ("_kind", "_node_type", "_node_data", "_children", "_num_leaves", "_num_nodes",
                 "_hash")  # fmt: skip

    def __init__(self, kind: _NodeKind | None, cls: type | None, aux: Any,
                 children: tuple[PyTreeDef, ...]) -> None:  # fmt: skip
        self._kind, self._node_type, self._node_data, self._children = kind, cls, aux, children
        num_leaves, num_nodes = 0, 1
        for c in children:
            num_leaves += c._num_leaves
            num_nodes += c._num_nodes
        self._num_leaves: int = 1 if kind is None else num_leaves
        self._num_nodes: int = num_nodes
        self._hash: int | None = None

    @property
    def num_leaves(self) -> int:
        return self._num_leaves

    @property
    def num_nodes(self) -> int:  # containers plus leaves
        return self._num_nodes

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        return tree_unflatten(self, leaves)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        same_root = self._node_type is other._node_type and self._node_data == other._node_data
        return self is other or (same_root and self._children == other._children)

    def __hash__(self) -> int:
        if self._hash is None:  # cached: jit hashes the same treedef on every call
            self._hash = hash((self._node_type, self._node_data, self._children))
        return self._hash

    def __repr__(self) -> str:
        return f"PyTreeDef({self})"

    def __str__(self) -> str:
        kind, children = self._kind, [str(c) for c in self._children]
        if kind is None or kind.name == "None":
            return "*" if kind is None else "None"
        if kind.name == "tuple":
            return f"({children[0]},)" if len(children) == 1 else f"({', '.join(children)})"
        if kind.name == "list":
            return f"[{', '.join(children)}]"
        if kind.name == "dict":
            items = zip(self._node_data, children, strict=True)
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in items) + "}"
        aux = self._node_data.__name__ if kind is _NAMEDTUPLE else self._node_data
        return f"CustomNode({kind.name}[{aux}], [{', '.join(children)}])"


_LEAF = PyTreeDef(None, None, None, ())  # every leaf shares this one treedef


def tree_flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list[Any], PyTreeDef]:
    """Split ``tree`` into its leaves (depth first) and its structure.

    >>> tree_flatten({"b": 1, "a": (2, None)})
    ([2, 1], PyTreeDef({'a': (*, None), 'b': *}))
    """
    leaves: list[Any] = []
    return leaves, _flatten(tree, is_leaf, leaves)


def _flatten(tree: Any, is_leaf: IsLeaf, leaves: list[Any]) -> PyTreeDef:
    kind = _kind_of(tree)
    if kind is None or (is_leaf is not None and is_leaf(tree)):
        leaves.append(tree)
        return _LEAF
    children, aux = kind.flatten(tree)
    child_defs = tuple([_flatten(child, is_leaf, leaves) for child in children])
    return PyTreeDef(kind, type(tree), aux, child_defs)


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a pytree of structure ``treedef`` from its leaves (inverse of tree_flatten)."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"{treedef!r} has {treedef.num_leaves} leaves, got {len(leaves)}")
    return _unflatten(treedef, iter(leaves))


def _unflatten(treedef: PyTreeDef, leaves: Iterator[Any]) -> Any:
    if treedef._kind is None:
        return next(leaves)
    children = [_unflatten(child, leaves) for child in treedef._children]
    return treedef._kind.unflatten(treedef._node_data, children)


class NotPlain(Exception):
    """Raised by ``plain_structure`` for a tree with other nodes than tuples, lists,
    dicts and None."""


def plain_structure(tree: Any, leaves: list[Any]) -> Any:
    """A hashable stand-in for ``tree_flatten(tree)[1]`` when ``tree``'s nodes are only
    tuples, lists, dicts and None (an optimizer state, a list of layers' parameters):
    nested tuples, which Python builds, hashes and compares in C, where a ``PyTreeDef``
    is built, hashed and compared node by node in Python (jit keys its fast path on
    it: a state of 22 arrays, 9 us instead of 21). Two trees get equal stand-ins
    exactly when their treedefs are equal. Appends the leaves in ``tree_flatten``'s
    order; raises ``NotPlain`` for any other node (a namedtuple, a registered type)."""
    t = type(tree)
    if t is tuple or t is list:
        return (t, *[plain_structure(child, leaves) for child in tree])
    if t is dict:
        children, keys = _flatten_dict(tree)
        return (dict, keys, *[plain_structure(child, leaves) for child in children])
    if tree is None:
        return None
    if _kind_of(tree) is not None:
        raise NotPlain(t.__name__)
    leaves.append(tree)
    return 0


def flatten_up_to(treedef: PyTreeDef, tree: Any) -> list[Any]:
    """The subtrees of ``tree`` at the leaf positions of ``treedef`` (for vmap's in_axes).

    Raises ValueError naming both structures if ``treedef`` is not a prefix of the tree's.

    >>> flatten_up_to(tree_structure((0, 0)), ([1, 2], {"a": 3}))
    [[1, 2], {'a': 3}]
    """
    out: list[Any] = []
    _flatten_up_to(treedef, tree, out, (treedef, tree))
    return out


def _flatten_up_to(treedef: PyTreeDef, tree: Any, out: list[Any], top: tuple[Any, Any]) -> None:
    if treedef._kind is None:
        out.append(tree)
        return
    kind = _kind_of(tree)
    children, aux = kind.flatten(tree) if kind is not None else ((), None)
    children = list(children)
    if (type(tree) is not treedef._node_type or aux != treedef._node_data
            or len(children) != len(treedef._children)):  # fmt: skip
        raise ValueError(
            f"pytree structure mismatch: expected a tree with prefix {top[0]!r}, got "
            f"{tree_structure(top[1])!r}; where the prefix has {treedef!r}, the tree has "
            f"{tree_structure(tree)!r}")  # fmt: skip
    for child_def, child in zip(treedef._children, children, strict=True):
        _flatten_up_to(child_def, child, out, top)


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Apply ``f`` to each leaf of ``tree`` and the matching subtrees of ``rest``, whose
    structures must have ``tree``'s as a prefix (as in JAX).

    >>> tree_map(lambda x, y: x + y, (1, {"a": 2}), (10, {"a": 20}))
    (11, {'a': 22})
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    all_leaves = [leaves] + [flatten_up_to(treedef, r) for r in rest]
    return tree_unflatten(treedef, [f(*xs) for xs in zip(*all_leaves, strict=True)])


def tree_leaves(tree: Any, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of ``tree``, in tree_flatten's order."""
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree: Any, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The PyTreeDef of ``tree``."""
    return tree_flatten(tree, is_leaf)[1]


def treedef_children(treedef: PyTreeDef) -> list[PyTreeDef]:
    """The treedefs of the root's children."""
    return list(treedef._children)


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """True for a one-node treedef; NOTE: as in JAX, that includes None, () and {}."""
    return treedef.num_nodes == 1


_NO_INITIALIZER = object()


def tree_reduce(f: Callable[[Any, Any], Any], tree: Any, initializer: Any = _NO_INITIALIZER,
                is_leaf: IsLeaf = None) -> Any:  # fmt: skip
    """``functools.reduce(f, tree_leaves(tree), initializer)``; initializer is optional."""
    start = () if initializer is _NO_INITIALIZER else (initializer,)
    return functools.reduce(f, tree_leaves(tree, is_leaf), *start)


def tree_transpose(outer_treedef: PyTreeDef, inner_treedef: PyTreeDef, tree: Any) -> Any:
    """Turn an outer tree of inner trees into an inner tree of outer trees."""
    rows = [flatten_up_to(inner_treedef, t) for t in flatten_up_to(outer_treedef, tree)]
    columns = zip(*rows, strict=True) if rows else [()] * inner_treedef.num_leaves
    return tree_unflatten(inner_treedef, [tree_unflatten(outer_treedef, c) for c in columns])
