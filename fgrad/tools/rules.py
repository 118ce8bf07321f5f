"""Print fgrad's rule tables: which primitive has which rule, and where it is defined.

    python -m fgrad.tools.rules            # the slot matrix: primitives x rules
    python -m fgrad.tools.rules jvp        # every JVP rule with its source location

Rules live next to their primitive (one family per file); this tool gives the
other view, one transform at a time, without a second copy of anything.
"""

from __future__ import annotations

import inspect
import sys

SLOTS = ("impl", "abstract_eval", "jvp", "transpose", "batch", "lower")


def _where(rule: object) -> str:
    per_argument = [r for r in getattr(rule, "rules", ()) if r is not None]
    if per_argument:  # defjvp: point at the primitive's own rule, not the constructor
        rule = per_argument[0]
    try:
        target = inspect.unwrap(rule)  # type: ignore[arg-type]
        file = inspect.getsourcefile(target) or "?"  # type: ignore[arg-type]
        line = inspect.getsourcelines(target)[1]  # type: ignore[arg-type]
        return f"{file.split('fgrad/', 1)[-1]}:{line}"
    except (TypeError, OSError):
        return "?"


def slot_matrix() -> str:
    import fgrad  # noqa: F401  (registers every primitive)
    from fgrad.core.primitive import all_primitives

    prims = sorted(all_primitives().items())
    width = max(len(n) for n, _ in prims) + 2
    lines = ["".ljust(width) + "".join(s[:9].ljust(10) for s in SLOTS)]
    for name, p in prims:
        marks = []
        for slot in SLOTS:
            if getattr(p, slot) is not None:
                marks.append("yes")
            elif slot == "jvp" and p.nondifferentiable:
                marks.append("zero")
            elif slot in p.missing_reasons:
                marks.append("(reason)")
            else:
                marks.append("-")
        lines.append(name.ljust(width) + "".join(m.ljust(10) for m in marks))
    return "\n".join(lines)


def rules_for(slot: str) -> str:
    import fgrad  # noqa: F401
    from fgrad.core.primitive import all_primitives

    if slot not in SLOTS:
        raise SystemExit(f"unknown rule slot {slot!r}; choose from {SLOTS}")
    lines = []
    for name, p in sorted(all_primitives().items()):
        rule = getattr(p, slot)
        if rule is not None:
            lines.append(f"{name:<28} {_where(rule)}")
        elif slot in p.missing_reasons:
            lines.append(f"{name:<28} (none: {p.missing_reasons[slot]})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(rules_for(sys.argv[1]) if len(sys.argv) > 1 else slot_matrix())
