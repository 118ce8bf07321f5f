"""Tests for fgrad.core.pytree (and its public face fgrad.tree_util), with JAX as the oracle.

Leaves, their order, and the printed structure must match ``jax.tree_util`` exactly.
"""

from __future__ import annotations

import collections
from typing import Any

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgrad import tree_util
from fgrad.core import pytree
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

Point = collections.namedtuple("Point", ["x", "y"])
OtherPoint = collections.namedtuple("Point", ["x", "y"])  # same name and fields, another type


class Box:
    """A user type registered as a node in both fgrad and JAX; ``label`` is aux data."""

    def __init__(self, label: str, contents: list[Any]) -> None:
        self.label, self.contents = label, contents


def _box_flatten(box: Box) -> tuple[list[Any], str]:
    return box.contents, box.label


def _box_unflatten(label: str, contents: Any) -> Box:
    return Box(label, list(contents))


register_pytree_node(Box, _box_flatten, _box_unflatten)
jax.tree_util.register_pytree_node(Box, _box_flatten, _box_unflatten)

EXAMPLES = [
    1,
    None,
    (),
    [],
    {},
    (1,),
    (1, 2.0, "three"),
    [1, [2, None, (3,)], {"z": 4, "a": [5, 6]}],
    {"b": 1, "a": (2, 3), "c": {"y": None, "x": 4}},
    {3: "three", 1: "one", 2: ("two",)},
    Point(1, Point((2, 3), None)),
    collections.OrderedDict([("b", 1), ("a", 2)]),
    collections.defaultdict(list, {"b": 1, "a": (2, 3)}),
    (np.zeros(3), {"w": np.ones((2, 2)), "b": np.arange(2)}),
    [Box("box", [1, (2, 3)]), Box("other", [])],
]


def check_same_as_jax(tree: Any) -> None:
    leaves, treedef = tree_flatten(tree)
    jax_leaves, jax_treedef = jax.tree_util.tree_flatten(tree)
    assert len(leaves) == len(jax_leaves)
    assert all(a is b for a, b in zip(leaves, jax_leaves, strict=True))  # same objects, same order
    assert repr(treedef) == repr(jax_treedef)
    assert treedef.num_leaves == jax_treedef.num_leaves
    assert treedef.num_nodes == jax_treedef.num_nodes


def assert_same_tree(a: Any, b: Any) -> None:
    """Equality that also checks container types and dict key order (== ignores both)."""
    assert type(a) is type(b)
    if isinstance(a, Box):
        assert a.label == b.label
        assert_same_tree(a.contents, b.contents)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        assert a is b


@pytest.mark.parametrize("tree", EXAMPLES, ids=lambda t: type(t).__name__)
def test_flatten_matches_jax(tree: Any) -> None:
    check_same_as_jax(tree)


@pytest.mark.parametrize("tree", EXAMPLES, ids=lambda t: type(t).__name__)
def test_round_trip(tree: Any) -> None:
    leaves, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    expected = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), leaves)
    assert_same_tree(rebuilt, expected)
    assert tree_structure(rebuilt) == treedef


# Random nested trees of the built-in node types, with small ints as leaves.
trees = st.recursive(
    st.integers(-5, 5) | st.none(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text("abc", max_size=2), children, max_size=3)
        | st.tuples(children, children).map(lambda xy: Point(*xy))
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_random_trees_match_jax_and_round_trip(tree: Any) -> None:
    check_same_as_jax(tree)
    leaves, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree and tree_structure(rebuilt) == treedef
    assert hash(tree_structure(tree)) == hash(treedef)


def test_dict_children_are_sorted_and_rebuilt_sorted() -> None:
    leaves, treedef = tree_flatten({"b": 1, "c": 2, "a": 3})
    assert leaves == [3, 1, 2]
    assert list(tree_unflatten(treedef, [10, 20, 30])) == ["a", "b", "c"]
    assert tree_structure({"a": 0, "b": 0}) == tree_structure({"b": 5, "a": 6})
    assert tree_structure({"a": 0}) != tree_structure({"b": 0})


def test_unsortable_dict_keys_are_an_error() -> None:
    with pytest.raises(ValueError, match="sortable"):
        tree_flatten({1: "x", "a": "y"})


def test_none_is_a_node_without_children() -> None:
    leaves, treedef = tree_flatten(None)
    assert leaves == [] and treedef.num_leaves == 0 and repr(treedef) == "PyTreeDef(None)"
    assert tree_unflatten(treedef, []) is None
    assert tree_map(lambda x: x + 1, (1, None, [2])) == (2, None, [3])
    assert tree_flatten((1, None), is_leaf=lambda x: x is None)[0] == [1, None]


def test_namedtuple_keeps_its_type() -> None:
    rebuilt = tree_map(lambda x: x * 2, Point(1, 2))
    assert type(rebuilt) is Point and rebuilt == Point(2, 4)
    assert tree_structure(Point(1, 2)) != tree_structure((1, 2))
    assert tree_structure(Point(1, 2)) != tree_structure(OtherPoint(1, 2))
    assert tree_structure(Point(1, 2)) == tree_structure(Point(3, 4))


def test_ordered_dict_uses_insertion_order() -> None:
    tree = collections.OrderedDict([("b", 1), ("a", 2)])
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2]
    rebuilt = tree_unflatten(treedef, [3, 4])
    assert type(rebuilt) is collections.OrderedDict
    assert list(rebuilt.items()) == [("b", 3), ("a", 4)]
    assert treedef != tree_structure(collections.OrderedDict([("a", 1), ("b", 2)]))
    assert treedef != tree_structure({"b": 1, "a": 2})


def test_defaultdict_keeps_its_factory() -> None:
    leaves, treedef = tree_flatten(collections.defaultdict(list, {"b": 1, "a": 2}))
    assert leaves == [2, 1]
    rebuilt = tree_unflatten(treedef, [3, 4])
    assert type(rebuilt) is collections.defaultdict and rebuilt.default_factory is list
    assert dict(rebuilt) == {"a": 3, "b": 4}
    assert treedef != tree_structure(collections.defaultdict(set, {"b": 1, "a": 2}))


def test_registered_node() -> None:
    tree = Box("lbl", [1, (2, 3)])
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2, 3]
    rebuilt = tree_unflatten(treedef, ["a", "b", "c"])
    assert isinstance(rebuilt, Box) and rebuilt.label == "lbl"
    assert rebuilt.contents == ["a", ("b", "c")]
    assert treedef == tree_structure(Box("lbl", [0, (0, 0)]))
    assert treedef != tree_structure(Box("other label", [0, (0, 0)]))  # aux data is compared


def test_registering_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="Box"):
        register_pytree_node(Box, _box_flatten, _box_unflatten)
    with pytest.raises(ValueError):
        register_pytree_node(tuple, lambda t: (t, None), lambda _, c: tuple(c))


def test_unregistered_types_and_subclasses_are_leaves() -> None:
    class MyDict(dict):  # type: ignore[type-arg]
        pass

    for leaf in (MyDict(a=1), np.zeros(3), "string", 1.5, object()):
        leaves, treedef = tree_flatten(leaf)
        assert len(leaves) == 1 and leaves[0] is leaf
        assert treedef == tree_structure(0) and treedef.num_leaves == 1
    check_same_as_jax([MyDict(a=1)])


def test_is_leaf_stops_descent() -> None:
    tree = {"a": (1, 2), "b": [3, (4, 5)]}
    leaves = tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), 3, (4, 5)]
    assert leaves == jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple))


def test_treedefs_are_hashable_and_comparable() -> None:
    a, b = tree_structure(({"x": 1}, [2, 3])), tree_structure(({"x": 9}, [8, 7]))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != tree_structure(({"x": 1}, (2, 3)))
    assert tree_structure((1, 2)) != tree_structure([1, 2])
    assert tree_structure((1, (2,))) != tree_structure((1, 2))
    assert a != "not a treedef"
    with pytest.raises(AttributeError):
        a.num_leaves = 5  # type: ignore[misc]


def test_structure_mismatch_names_both_structures() -> None:
    with pytest.raises(ValueError) as info:
        tree_map(lambda x, y: x + y, (1, {"a": 2}), (1, {"b": 2}))
    message = str(info.value)
    assert "PyTreeDef((*, {'a': *}))" in message and "PyTreeDef((*, {'b': *}))" in message
    for first, second in [((1, 2), [1, 2]), ((1, 2), (1, 2, 3)), ((1, None), (1, 2)), ([1], 1)]:
        with pytest.raises(ValueError, match="mismatch"):
            tree_map(lambda *xs: xs, first, second)
        with pytest.raises(ValueError):  # JAX agrees these do not match
            jax.tree_util.tree_map(lambda *xs: xs, first, second)


def test_tree_map_with_several_trees() -> None:
    out = tree_map(lambda x, y, z: x + y * z, {"a": 1, "b": (2, 3)}, {"a": 1, "b": (1, 1)},
                   {"b": (10, 100), "a": 0})  # fmt: skip
    assert out == {"a": 1, "b": (12, 103)}
    # Deeper structure in the other trees is passed whole, as in JAX.
    deep = tree_map(lambda x, y: (x, y), (1, 2), ((3, 4), 5))
    assert deep == ((1, (3, 4)), (2, 5))
    assert deep == jax.tree_util.tree_map(lambda x, y: (x, y), (1, 2), ((3, 4), 5))


def test_unflatten_checks_the_leaf_count() -> None:
    treedef = tree_structure((1, [2, 3]))
    with pytest.raises(ValueError, match="3 leaves, got 2"):
        tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError):
        tree_unflatten(treedef, [1, 2, 3, 4])
    assert treedef.unflatten(iter([7, 8, 9])) == (7, [8, 9])


def test_flatten_up_to() -> None:
    prefix = tree_structure((0, {"a": 0, "b": None}))
    tree = ([1, 2], {"b": None, "a": {"deep": 3}})
    assert flatten_up_to(prefix, tree) == [[1, 2], {"deep": 3}]
    jax_prefix = jax.tree_util.tree_structure((0, {"a": 0, "b": None}))
    assert flatten_up_to(prefix, tree) == jax_prefix.flatten_up_to(tree)
    assert flatten_up_to(tree_structure(0), tree) == [tree]
    with pytest.raises(ValueError) as info:
        flatten_up_to(prefix, ([1, 2], {"a": 3}))
    assert repr(prefix) in str(info.value)
    assert "PyTreeDef(([*, *], {'a': *}))" in str(info.value)
    with pytest.raises(ValueError, match="mismatch"):
        flatten_up_to(prefix, [0, {"a": 0, "b": None}])


def test_treedef_children_and_is_leaf_match_jax() -> None:
    for tree in [(1, {"a": 2}), [None, ()], {"x": [1]}]:
        ours, theirs = tree_structure(tree), jax.tree_util.tree_structure(tree)
        assert [repr(c) for c in treedef_children(ours)] == [
            repr(c) for c in jax.tree_util.treedef_children(theirs)
        ]
    for tree in [1, None, (), {}, [1], (None,)]:
        ours, theirs = tree_structure(tree), jax.tree_util.tree_structure(tree)
        assert treedef_is_leaf(ours) == jax.tree_util.treedef_is_leaf(theirs), tree
    assert treedef_is_leaf(tree_structure(1)) and not treedef_is_leaf(tree_structure([1]))


def test_tree_reduce() -> None:
    tree = {"a": 1, "b": [2, 3]}
    assert tree_reduce(lambda x, y: x + y, tree) == 6
    assert tree_reduce(lambda x, y: x + y, tree, 10) == 16
    assert tree_reduce(lambda x, y: x + [y], tree, []) == [1, 2, 3]
    with pytest.raises(TypeError):  # empty tree, no initializer: same as functools.reduce
        tree_reduce(lambda x, y: x + y, [])


def test_tree_transpose_matches_jax() -> None:
    outer, inner = tree_structure([0, 0, 0]), tree_structure({"a": 0, "b": (0, 0)})
    tree = [{"a": i, "b": (10 * i, 100 * i)} for i in range(3)]
    expected = jax.tree_util.tree_transpose(
        jax.tree_util.tree_structure([0, 0, 0]),
        jax.tree_util.tree_structure({"a": 0, "b": (0, 0)}), tree)  # fmt: skip
    assert tree_transpose(outer, inner, tree) == expected == {
        "a": [0, 1, 2], "b": ([0, 10, 20], [0, 100, 200])}  # fmt: skip


def test_flatten_is_fast_enough_to_measure() -> None:
    # Not a benchmark: a guard against an accidentally quadratic or exception-driven path.
    import timeit

    tree = (np.zeros(3), np.zeros(3), np.zeros(3))
    seconds = min(timeit.repeat(lambda: tree_flatten(tree), number=1000, repeat=3)) / 1000
    assert seconds < 50e-6


def test_public_face_reexports_core() -> None:
    for name in tree_util.__all__:
        assert getattr(tree_util, name) is getattr(pytree, name)
    assert tree_util.PyTreeDef is PyTreeDef


def test_plain_structure_stands_in_for_the_treedef() -> None:
    """jit's fast path keys on it: equal exactly when the treedefs are, same leaves."""
    a, b = np.ones(2), np.zeros(3)
    trees = [[a, (b, None)], [a, [b, None]], (a, (b, None)), {"w": a, "b": (b,)},
             {"v": a, "b": (b,)}, {"b": (b,), "w": a}, [a, (b,)], [[a], (b, None)], a, None,
             {"n": 3, "x": [a, {"y": b}]}]
    for t in trees:
        leaves: list[Any] = []
        key = pytree.plain_structure(t, leaves)
        want_leaves, want_def = pytree.tree_flatten(t)
        assert len(leaves) == len(want_leaves) and all(
            x is y for x, y in zip(leaves, want_leaves))
        for u in trees:
            same = pytree.plain_structure(u, []) == key
            assert same == (pytree.tree_flatten(u)[1] == want_def), (t, u)
    Point = collections.namedtuple("Point", "x y")
    for t in ([Point(a, b)], {"p": collections.OrderedDict(x=a)}):
        with pytest.raises(pytree.NotPlain):
            pytree.plain_structure(t, [])
