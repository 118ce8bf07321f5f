"""``Primitive``: the unit of fgrad. Every transform and backend is a table of
per-primitive rules, and those rules live in *slots* on the primitive itself.

A primitive is an operation fgrad knows by name (``sin``, ``dot_general``,
``scan`` ...). Applying it is ``prim.bind(*arrays, **params)``: arrays are
positional, static parameters are keywords. ``bind`` hands the primitive to
the *current trace* (see ``trace.py``), which decides what applying it means:
compute it (eager), record it (staging), differentiate it (jvp), batch it ...

The slots, filled by the family files in ``fgrad/primitives``:

========================  ====================================================
``impl``                  numpy reference implementation (the semantics)
``abstract_eval``         input avals -> output aval(s); raises on bad input
``jvp``                   forward-mode derivative, see ``transforms/jvp.py``
``transpose``             for linear primitives, see ``transforms/transpose.py``
``batch``                 vmap rule, see ``transforms/vmap.py``
``lower``                 kernel-IR lowering, see ``fgrad/lowering``
``partial_eval``          (higher-order primitives only) known/unknown split
``pretty``                (optional) custom printing of params
========================  ====================================================

Flags: ``multiple_results``, ``linear_args`` and ``nondifferentiable`` (the
JVP is zero by declaration, e.g. comparisons). An empty slot may carry a
stated reason (``missing_reasons``) so the completeness test can tell a
deliberate gap from a forgotten one.
"""

from __future__ import annotations

from typing import Any, Callable

from fgrad.core.trace import Tracer, _context, eval_trace

Rule = Callable[..., Any]

_registry: dict[str, Primitive] = {}


class Primitive:
    """A named operation with rule slots. See the module docstring."""

    def __init__(self, name: str, *, multiple_results: bool = False) -> None:
        if name in _registry:
            raise ValueError(f"primitive {name!r} is already registered")
        _registry[name] = self
        self.name = name
        self.multiple_results = multiple_results
        self.impl: Rule | None = None
        self.abstract_eval: Rule | None = None
        self.jvp: Rule | None = None
        self.transpose: Rule | None = None
        self.batch: Rule | None = None
        self.lower: Rule | None = None
        self.partial_eval: Rule | None = None
        self.pretty: Rule | None = None
        self.linear_args: tuple[int, ...] | str = ()  # positions, or "all"
        self.nondifferentiable = False
        # Eager execution caches abstract evaluation by argument types and params.
        # Call primitives (params holding jaxprs or Python callables, new on every call)
        # turn this off: their rule is trivial and caching would only hold memory.
        self.cache_abstract_eval = True
        # slot name -> why it is deliberately empty (checked by the completeness test)
        self.missing_reasons: dict[str, str] = {}

    def bind(self, *args: Any, **params: Any) -> Any:
        """Apply the primitive under whatever trace is current."""
        trace = _context.trace
        if not trace.records_constants:
            # Shortcut: constants in, no staging trace anywhere up the chain: every
            # trace would forward this to the parent, so evaluate it right away.
            for x in args:
                if isinstance(x, Tracer):
                    break
            else:
                return eval_trace.process_primitive(self, args, params)
        return trace.process_primitive(self, args, params)

    # --- registration helpers: explicit, one line each in the family files ---
    def def_impl(self, rule: Rule) -> Rule:
        self.impl = rule
        return rule

    def def_abstract_eval(self, rule: Rule) -> Rule:
        self.abstract_eval = rule
        return rule

    def def_jvp(self, rule: Rule) -> Rule:
        self.jvp = rule
        return rule

    def def_transpose(self, rule: Rule) -> Rule:
        self.transpose = rule
        return rule

    def def_batch(self, rule: Rule) -> Rule:
        self.batch = rule
        return rule

    def def_lower(self, rule: Rule) -> Rule:
        self.lower = rule
        return rule

    def declare_missing(self, slot: str, reason: str) -> None:
        """State why ``slot`` is empty (e.g. transpose of a non-linear primitive)."""
        self.missing_reasons[slot] = reason

    def __repr__(self) -> str:
        return self.name


def all_primitives() -> dict[str, Primitive]:
    """Every registered primitive by name (import ``fgrad`` first to register them)."""
    return dict(_registry)
