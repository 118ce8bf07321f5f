"""``jit``: stage a function out once, then run the staged program.

``jit(f)(*args)`` traces ``f`` into a jaxpr for the arguments' abstract
values (shape, dtype, weak type) and static arguments, caches it, and binds
``jit_p``, a *call primitive* whose parameter is that jaxpr. Because jit is a
primitive like any other, every transform handles it with ordinary rules:

* eager: ``impl`` hands the jaxpr to a **backend** (``"interpret"`` today: the
  reference evaluator; the LLVM and CUDA backends register here later);
* jvp: differentiate the inner jaxpr (``jvp_jaxpr``) and bind ``jit_p`` again;
* partial eval: split the inner jaxpr into known and unknown halves;
* transpose: transpose the inner jaxpr;
* vmap: batch the inner jaxpr (``batch_jaxpr``) and bind ``jit_p`` again;
* staging: ``make_jaxpr(jit(f))`` shows a ``jit`` equation with the jaxpr inside.

So ``grad(jit(f))``, ``jit(grad(f))``, ``vmap(jit(f))`` and any deeper nesting just
work.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.config import config
from fgrad.core.ad_util import Zero, is_undefined_primal, tangent_aval
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core import dtypes
from fgrad.core.dtypes import canonicalize_dtype
from fgrad.core.errors import FgradTypeError, api_boundary
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import (
    NotPlain, plain_structure, tree_flatten, tree_unflatten, treedef_is_leaf)
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import Tracer, current_trace, eval_trace, set_current_trace, wrap_result
from fgrad.transforms import api_util

# --- backends --------------------------------------------------------------------------

Runner = Callable[[ClosedJaxpr, Sequence[Any]], list[Any]]
Prepared = Callable[[Sequence[np.ndarray]], list[Any]]
_backends: dict[str, Runner] = {}
_preparers: dict[str, Callable[[ClosedJaxpr], Prepared]] = {}
# Backends that may be chosen by default, best first, each with its availability probe.
_default_candidates: list[tuple[int, str, Callable[[], bool]]] = []
_auto_choice: str | None = None


def register_backend(name: str, runner: Runner, *, default_priority: int | None = None,
                     available: Callable[[], bool] = lambda: True,
                     prepare: Callable[[ClosedJaxpr], Prepared] | None = None) -> None:
    """Make ``jit(..., backend=name)`` run jaxprs with ``runner(closed_jaxpr, args)``.

    With ``default_priority``, the backend is a candidate for the default: the
    available candidate with the highest priority wins (``available`` is
    asked once, lazily, at the first ``jit`` call that needs the default).
    ``prepare(closed_jaxpr)``, if given, returns the runner specialized to one
    jaxpr for jit's fast path: a function of the arguments as numpy arrays of
    exactly the jaxpr's input types (by default ``runner`` with the jaxpr bound).
    """
    global _auto_choice
    _backends[name] = runner
    if prepare is not None:
        _preparers[name] = prepare
    if default_priority is not None:
        _default_candidates.append((default_priority, name, available))
        _default_candidates.sort(key=lambda c: -c[0])
        _auto_choice = None


def available_backends() -> list[str]:
    return sorted(_backends)


def default_backend() -> str:
    """The backend ``jit`` uses when none is named.

    ``FGRAD_BACKEND`` (or ``config.update("default_backend", name)``) if set;
    otherwise the best available registered candidate: ``"cuda"`` when cupy
    finds a GPU, else ``"cpu"`` (LLVM).
    """
    global _auto_choice
    if config.default_backend:
        return config.default_backend
    if _auto_choice is None:
        _auto_choice = next((name for _, name, ok in _default_candidates if ok()), "interpret")
    return _auto_choice


def _get_runner(backend: str) -> Runner:
    try:
        return _backends[backend]
    except KeyError:
        raise ValueError(f"jit: unknown backend {backend!r}; available backends: "
                         f"{available_backends()}") from None


# --- the jit_p call primitive --------------------------------------------------------------

jit_p = Primitive("jit", multiple_results=True)


def _jit_impl(*args: Any, jaxpr: ClosedJaxpr, name: str, backend: str) -> list[Any]:
    return _get_runner(backend)(jaxpr, args)


def _jit_abstract_eval(*avals: ShapedArray, jaxpr: ClosedJaxpr, name: str,
                       backend: str) -> list[ShapedArray]:
    expected = jaxpr.in_avals
    if len(avals) != len(expected) or any(
            a.shape != e.shape or a.dtype != e.dtype for a, e in zip(avals, expected)):
        raise FgradTypeError(f"jit({name}): called with argument types "
                             f"{[a.str_short() for a in avals]}, but the staged jaxpr expects "
                             f"{[e.str_short() for e in expected]}")
    return jaxpr.out_avals


def _jit_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, jaxpr: ClosedJaxpr,
             name: str, backend: str) -> tuple[list[Any], list[Any]]:
    # Higher-order rule: applies a transform to the sub-jaxpr (imported here, see STYLE c.2).
    from fgrad.transforms.jvp import jvp_jaxpr
    nonzeros = [type(t) is not Zero for t in tangents]
    jvp_closed, out_nonzeros = _cached_jvp_jaxpr(jaxpr, tuple(nonzeros), jvp_jaxpr)
    nz_tangents = [t for t in tangents if type(t) is not Zero]
    outs = jit_p.bind(*primals, *nz_tangents, jaxpr=jvp_closed, name=f"jvp({name})",
                      backend=backend)
    n = len(jaxpr.out_avals)
    primals_out, rest = outs[:n], iter(outs[n:])
    tangents_out = [next(rest) if nz else Zero(tangent_aval(a))
                    for nz, a in zip(out_nonzeros, jaxpr.out_avals)]
    return primals_out, tangents_out


def _jit_partial_eval(trace: Any, args: Sequence[Any], params: dict[str, Any]) -> list[Any]:
    from fgrad.transforms.partial_eval import partial_eval_jaxpr
    jaxpr, name = params["jaxpr"], params["name"]
    unknowns = [trace.is_own(x) for x in args]
    known_jaxpr, unknown_jaxpr, out_unknowns, num_res = partial_eval_jaxpr(jaxpr, unknowns)
    known_args = [x for x, uk in zip(args, unknowns) if not uk]
    with set_current_trace(trace.parent):
        known_outs = jit_p.bind(*known_args, jaxpr=known_jaxpr, name=f"known({name})",
                                backend=params["backend"])
    n_known = len(known_outs) - num_res
    known_outs, residuals = known_outs[:n_known], known_outs[n_known:]
    unknown_atoms = [trace.to_atom(x) for x in residuals] + \
                    [trace.to_atom(x) for x, uk in zip(args, unknowns) if uk]
    unknown_outs = trace.emit(jit_p, unknown_atoms, dict(params, jaxpr=unknown_jaxpr,
                                                          name=f"unknown({name})"))
    known_iter, unknown_iter = iter(known_outs), iter(unknown_outs)
    return [next(unknown_iter) if uk else next(known_iter) for uk in out_unknowns]


def _jit_transpose(cts: Sequence[Any], *args: Any, jaxpr: ClosedJaxpr, name: str,
                   backend: str) -> list[Any]:
    from fgrad.transforms.jvp import instantiate_zeros
    from fgrad.transforms.transpose import transpose_jaxpr
    linear = [is_undefined_primal(x) for x in args]
    t_jaxpr = transpose_jaxpr(jaxpr, linear)
    residuals = [x for x in args if not is_undefined_primal(x)]
    cts_in = jit_p.bind(*residuals, *map(instantiate_zeros, cts), jaxpr=t_jaxpr,
                        name=f"transpose({name})", backend=backend)
    cts_iter = iter(cts_in)
    return [next(cts_iter) if lin else None for lin in linear]


def _jit_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
               jaxpr: ClosedJaxpr, name: str, backend: str) -> tuple[list[Any], list[Any]]:
    # Batch the inner jaxpr (batch axes stay where they are) and call jit on the result:
    # vmap(jit(f)) is still one staged program.
    from fgrad.transforms.vmap import batch_jaxpr
    batched, out_dims = _cached_batch_jaxpr(jaxpr, tuple(dims), axis_size, batch_jaxpr)
    outs = jit_p.bind(*vals, jaxpr=batched, name=f"vmap({name})", backend=backend)
    return outs, out_dims


jit_p.def_impl(_jit_impl)
jit_p.cache_abstract_eval = False
jit_p.def_abstract_eval(_jit_abstract_eval)
jit_p.def_jvp(_jit_jvp)
jit_p.def_transpose(_jit_transpose)
jit_p.partial_eval = _jit_partial_eval
jit_p.def_batch(_jit_batch)
jit_p.linear_args = "when its jaxpr is"


def _cached_jvp_jaxpr(jaxpr: ClosedJaxpr, nonzeros: tuple[bool, ...],
                      jvp_jaxpr: Callable[..., Any]) -> tuple[ClosedJaxpr, list[bool]]:
    """JVP jaxprs are cached on the jaxpr object, so repeated grads do not retrace."""
    cache = _jvp_cache.setdefault(id(jaxpr), (jaxpr, {}))[1]
    if nonzeros not in cache:
        cache[nonzeros] = jvp_jaxpr(jaxpr, nonzeros, instantiate=False)
    return cache[nonzeros]


_jvp_cache: dict[int, tuple[ClosedJaxpr, dict[Any, Any]]] = {}


def _cached_batch_jaxpr(jaxpr: ClosedJaxpr, dims: tuple[int | None, ...], axis_size: int,
                        batch_jaxpr: Callable[..., Any]) -> tuple[ClosedJaxpr, list[Any]]:
    """Batched jaxprs are cached on the jaxpr object too: ``vmap(jit(f))`` traces once."""
    cache = _batch_cache.setdefault(id(jaxpr), (jaxpr, {}))[1]
    key = (dims, axis_size)
    if key not in cache:
        batched, out_dims = batch_jaxpr(jaxpr, dims, axis_size)
        if any(isinstance(c, Tracer) for c in batched.consts):
            return batched, out_dims  # holds values of an enclosing transform: never reuse
        cache[key] = (batched, out_dims)
    return cache[key]


_batch_cache: dict[int, tuple[ClosedJaxpr, dict[Any, Any]]] = {}


def hoist_tracer_consts(closed: ClosedJaxpr) -> tuple[ClosedJaxpr, list[Any]]:
    """Turn constants that are tracers of enclosing transforms into leading arguments.

    A jitted function that closes over an outer tracer (``grad(lambda x:
    jit(lambda y: x * y)(2.0))``) must pass it as an argument of ``jit_p``,
    or the outer transform would never see it.
    """
    j = closed.jaxpr
    hoisted = [(v, c) for v, c in zip(j.constvars, closed.consts) if isinstance(c, Tracer)]
    if not hoisted:
        return closed, []
    kept = [(v, c) for v, c in zip(j.constvars, closed.consts) if not isinstance(c, Tracer)]
    jaxpr = Jaxpr([v for v, _ in kept], [v for v, _ in hoisted] + j.invars, j.outvars, j.eqns)
    return ClosedJaxpr(jaxpr, [c for _, c in kept]), [c for _, c in hoisted]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --- the user-facing wrapper -------------------------------------------------------------------

class CacheInfo:
    def __init__(self, hits: int, misses: int, currsize: int) -> None:
        self.hits, self.misses, self.currsize = hits, misses, currsize

    def __repr__(self) -> str:
        return f"CacheInfo(hits={self.hits}, misses={self.misses}, currsize={self.currsize})"


def _typed_values(xs: Sequence[Any], key: list[Any]) -> list[np.ndarray] | None:
    """The numpy values of ``xs`` if all are arrays or scalars (appending their types to
    ``key``). A Python or numpy scalar becomes the array ``canonicalize_arg`` would make
    of it (a Python int: a weak int32 or int64; a step counter is the usual one)."""
    raw = []
    for x in xs:
        t = type(x)
        if t is Array:
            value = x._value
            key += (value.shape, value.dtype, x.weak_type)
        elif t is np.ndarray:
            value = x
            key += (value.shape, value.dtype, False)
        elif t in (int, float, bool) or (isinstance(x, np.generic)
                                         and x.dtype.kind in "biuf"):
            try:
                dtype, weak = dtypes.dtype_and_weak_type(x)
            except (OverflowError, TypeError):
                return None  # (the general path raises the error)
            value = np.asarray(x, dtype=dtype)
            key += ((), dtype, weak)
        else:
            return None
        raw.append(value)
    return raw


class Jitted:
    """The result of ``jit(fun)``: call it like ``fun``."""

    def __init__(self, fun: Callable[..., Any], static_argnums: Sequence[int],
                 static_argnames: Sequence[str], backend: str | None) -> None:
        self.fun = fun
        nums, names = set(static_argnums), set(static_argnames)
        # As in JAX, a static argument may be given by position or by keyword: map
        # each static position to its parameter name and back, through the signature.
        try:
            params = list(inspect.signature(fun).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i in list(nums):
            if -len(positional) <= i < len(positional):
                names.add(positional[i])
        for i, name in enumerate(positional):
            if name in names:
                nums.add(i)
        self.static_argnums = tuple(sorted(nums))
        self.static_argnames = tuple(sorted(names))
        self.backend = backend
        self._cache: dict[Any, tuple[ClosedJaxpr, Any]] = {}
        self._hits = self._misses = 0
        self._last_key: Any = None  # what the latest compile was for (to explain the next)
        self._fast: dict[Any, tuple[ClosedJaxpr, Any, Runner]] = {}
        functools.update_wrapper(self, fun, updated=())  # keep our own attributes

    def _split(self, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> tuple[list[Any], Any, tuple[Any, ...], Callable[..., Any]]:
        nargs = len(args)
        static_nums = {n % nargs if nargs else n for n in self.static_argnums
                       if -nargs <= n < nargs}
        # Static values are keyed with their type: 1 and True are equal but not the same.
        static = tuple((i, type(args[i]), args[i]) for i in sorted(static_nums)) + tuple(
            sorted(((k, type(v), v) for k, v in kwargs.items() if k in self.static_argnames),
                   key=lambda kv: kv[0]))
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static_nums)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        for _, _, value in static:
            try:
                hash(value)
            except TypeError:
                raise ValueError(f"jit({api_util.fun_name(self.fun)}): static arguments must "
                                 f"be hashable, got a value of type {type(value).__name__}"
                                 ) from None

        def fun_of_dyn(dyn_args: tuple[Any, ...], dyn_kwargs: dict[str, Any]) -> Any:
            full, it = [], iter(dyn_args)
            for i in range(nargs):
                full.append(args[i] if i in static_nums else next(it))
            return self.fun(*full, **dyn_kwargs, **{k: v for k, v in kwargs.items()
                                                    if k in self.static_argnames})

        return leaves, in_tree, static, fun_of_dyn

    def trace(self, *args: Any, **kwargs: Any) -> tuple[ClosedJaxpr, Any, list[Any]]:
        """Stage for these arguments (or take the cached jaxpr).

        Returns (jaxpr, out_tree, leaves)."""
        leaves, in_tree, static, fun_of_dyn = self._split(args, kwargs)
        name = api_util.fun_name(self.fun)
        leaves = api_util.canonicalize_leaves(leaves, f"jit({name})")
        avals = tuple(get_aval(x) for x in leaves)
        key = (in_tree, avals, static, config.enable_x64)  # x64 changes default dtypes
        entry = self._cache.get(key)
        if entry is None:
            self._misses += 1
            flat_fun, out_tree = api_util.flatten_fun(fun_of_dyn, in_tree, f"jit({name})")
            closed = trace_to_jaxpr(flat_fun, avals)
            entry = (closed, out_tree.value)
            if not any(isinstance(c, Tracer) for c in closed.consts):
                self._cache[key] = entry
            if self._misses > 2:
                warnings.warn(f"jit({name}) is compiling for the {_ordinal(self._misses)} time: "
                              f"{self._what_changed(key, args, kwargs)}. Each new shape, dtype "
                              "or static value traces and compiles again; pad or bucket the "
                              "shapes, or mark the argument static only if it takes few "
                              "values.", stacklevel=3)
            self._last_key = key
        else:
            self._hits += 1
        return entry[0], entry[1], leaves

    def _what_changed(self, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Name the arguments whose type (or static value) differs from the previous compile."""
        old_tree, old_avals, old_static, old_x64 = self._last_key
        new_tree, new_avals, new_static, new_x64 = key
        if old_x64 != new_x64:
            return f"enable_x64 changed from {old_x64} to {new_x64}"
        if old_tree != new_tree:
            return f"the arguments' pytree structure changed from {old_tree} to {new_tree}"
        if old_static != new_static:
            old = {k: (t, v) for k, t, v in old_static}
            new = {k: (t, v) for k, t, v in new_static}
            diffs = [f"static argument {self._arg_name(k)} changed from "
                     f"{old[k][1] if k in old else 'absent'!r} to "
                     f"{new[k][1] if k in new else 'absent'!r}"
                     for k in sorted(set(old) | set(new), key=str) if old.get(k) != new.get(k)]
            return "; ".join(diffs)
        # Same structure: say which leaves changed, named by argument (and leaf within it).
        static_nums = {i for i, _, _ in new_static if isinstance(i, int)}
        owners = [(self._arg_name(i), tree_flatten(a)[1].num_leaves)
                  for i, a in enumerate(args) if i not in static_nums]
        owners += [(self._arg_name(k), tree_flatten(v)[1].num_leaves)
                   for k, v in sorted(kwargs.items()) if k not in self.static_argnames]
        names = [name if count == 1 else f"{name} (leaf {j})"
                 for name, count in owners for j in range(count)]
        diffs = [f"argument {names[i] if i < len(names) else i} changed from "
                 f"{a.str_short()} to {b.str_short()}"
                 for i, (a, b) in enumerate(zip(old_avals, new_avals)) if a != b]
        return "; ".join(diffs)

    def _arg_name(self, i: int | str) -> str:
        if isinstance(i, str):
            return repr(i)
        try:
            params = list(inspect.signature(self.fun).parameters)
            return f"{params[i]!r}" if 0 <= i < len(params) else f"#{i}"
        except (TypeError, ValueError):
            return f"#{i}"

    @api_boundary
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if config.disable_jit:
            return self.fun(*args, **kwargs)
        fast_key = None if kwargs else self._fast_key(args)
        if fast_key is not None:
            entry = self._fast.get(fast_key[0])
            if entry is not None:
                self._hits += 1
                run, out_tree, out_avals = entry
                outs = [wrap_result(v, aval) for v, aval in zip(run(fast_key[1]), out_avals)]
                return outs[0] if out_tree is None else tree_unflatten(out_tree, outs)
        backend = self.backend or default_backend()
        closed, out_tree, leaves = self.trace(*args, **kwargs)
        closed, hoisted = hoist_tracer_consts(closed)
        runner = _get_runner(backend)  # fail early on an unknown backend name
        outs = jit_p.bind(*hoisted, *leaves, jaxpr=closed, name=api_util.fun_name(self.fun),
                          backend=backend)
        if fast_key is not None and not hoisted and all(
                v.dtype == canonicalize_dtype(v.dtype) for v in fast_key[1]):
            prepare = _preparers.get(backend)
            run = prepare(closed) if prepare else functools.partial(runner, closed)
            self._fast[fast_key[0]] = (run, None if treedef_is_leaf(out_tree) else out_tree,
                                       closed.out_avals)
        return tree_unflatten(out_tree, outs)

    # The fast path: a training loop calls the same function with concrete arrays of
    # the same types over and over. Once such a call has been traced and compiled, the
    # next ones go from the arguments' types straight to the backend's prepared program
    # (for "cpu", one native call that checks the arrays itself), skipping
    # canonicalization, the trace cache and `bind` (what `jit_p.bind` would do on the
    # eval trace, with the same result).

    def _fast_key(self, args: tuple[Any, ...]) -> Any:
        """(key, raw values) when every argument is a concrete array and no transform is
        tracing, else None (the general path handles the rest).

        The key holds each array's shape, dtype and weak type, the backend and the
        x64 flag; and the arguments' pytree structure unless every argument is an
        array itself (the common case, keyed without flattening)."""
        if self.static_argnums or current_trace() is not eval_trace:
            return None
        key: list[Any] = [self.backend or default_backend(), config.enable_x64]
        raw = _typed_values(args, key)
        if raw is None:
            leaves: list[Any] = []
            try:
                structure: Any = plain_structure(args, leaves)
            except NotPlain:  # a namedtuple, a registered node
                leaves, structure = tree_flatten(args)
            key = [structure, *key]
            raw = _typed_values(leaves, key)
            if raw is None:
                return None
        return tuple(key), raw

    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        closed, _, _ = self.trace(*args, **kwargs)
        return Lowered(closed)

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._misses, len(self._cache))

    def clear_cache(self) -> None:
        self._cache.clear()
        self._fast.clear()
        self._hits = self._misses = 0


class Lowered:
    """``jit(f).lower(*args)``: the staged program, printable stage by stage.

    ``as_text(stage)`` with stage ``"jaxpr"`` (the staged program), or, from
    the compiled backends: ``"kernels"`` (the scheduled kernel IR),
    ``"llvm"`` (LLVM IR as generated), ``"llvm-opt"`` (after optimization)
    and ``"asm"`` (host assembly); ``"cuda"``: the same kernels as CUDA C.
    ``FGRAD_DEBUG=jaxpr,kernels,llvm,asm``
    prints the same stages whenever the CPU backend compiles a function.
    """

    STAGES = ("jaxpr", "kernels", "llvm", "llvm-opt", "asm", "cuda")

    def __init__(self, jaxpr: ClosedJaxpr) -> None:
        self.jaxpr = jaxpr

    def as_text(self, stage: str = "jaxpr") -> str:
        if stage == "jaxpr":
            return str(self.jaxpr)
        if stage not in self.STAGES:
            raise ValueError(f"as_text: unknown stage {stage!r}; stages: {self.STAGES}")
        from fgrad.lowering.backends import describe  # lowering sits below transforms
        return describe(self.jaxpr, stage)


def jit(fun: Callable[..., Any] | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), backend: str | None = None,
        donate_argnums: Any = ()) -> Any:
    """Compile ``fun``: trace it once per argument types and run the staged program.

    Args:
      fun: a pure function of arrays (pytrees of arrays).
      static_argnums / static_argnames: arguments treated as compile-time
        constants (hashable Python values); each new value traces again.
      backend: ``"cpu"`` (fused kernels compiled by LLVM), ``"cuda"`` (CUDA
        kernels through cupy), ``"cuda_emulator"`` (the same CUDA source run
        on the CPU, for verification) or ``"interpret"`` (the reference
        evaluator, primitive by primitive). Default: ``default_backend()``.
      donate_argnums: accepted for JAX compatibility; ignored (host arrays).

    Usable as a decorator, also as ``@jit(static_argnums=...)`` via partial.
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    if fun is None:
        return lambda f: Jitted(f, nums, names, backend)
    return Jitted(fun, nums, names, backend)
