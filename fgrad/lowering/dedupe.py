"""One kernel for two that compute the same buffer: a program-level common subexpression.

The scheduler lowers each equation of a jaxpr on its own, so two equations that
need the same intermediate each write it. A CNN's training step is the case in
point: the forward convolution writes the im2col patches of its input, and the
weight gradient's convolution, lowered later from another equation, writes the
same patches again (29 MB for a 64 x 28 x 28 x 16 input). The two kernels differ
only in their output's name and in how their index arithmetic happens to be
written (``i2 + i4 - 1`` against ``i4 + i2 - 1``, a loop of extent 1 whose
variable appears in one and not the other).

``merge_duplicate_kernels`` compares kernels in the normal form of
``simplify.canonical`` (sums ordered, extent-1 loop variables replaced by 0), with
only the output renamed, and keeps the first of each kind: the later one's buffer is replaced by
the earlier one's in every later step. It only does so where that cannot change
a value: both outputs written by their kernel alone and never read-modify-written,
every input written before the first kernel and not after it (or never: program
inputs and constants), neither buffer touched inside a branch or loop, the later
one not a program output.
"""

from __future__ import annotations

from fgrad.lowering.kernel_ir import Kernel
from fgrad.lowering.schedule import (
    LibraryCall, Program, Step, buffers_used, nested_steps, step_buffers)
from fgrad.lowering.simplify import canonical, read_modify_write, rename_buffers


def merge_duplicate_kernels(program: Program) -> Program:
    """``program`` with each kernel that repeats an earlier one (``_key``) dropped and
    its buffer read from the earlier kernel's (see the module docstring for when)."""
    written: dict[str, int] = {}
    in_nested: set[str] = set()
    for step in program.steps:
        for name in _writes(step):
            written[name] = written.get(name, 0) + 1
        for body in nested_steps(step):
            for inner in body:
                in_nested |= step_buffers(inner)
    first: dict[str, str] = {}  # key -> output buffer of the first kernel with that key
    rename: dict[str, str] = {}
    steps: list[Step] = []
    for step in program.steps:
        if rename:
            step = _renamed(step, rename)
        out = _single_output(step)
        if out is not None and written.get(out) == 1 and out not in in_nested:
            assert isinstance(step, Kernel)
            inputs = [p.name for p in step.params if not p.is_output]
            if all(written.get(name, 0) <= 1 and name not in in_nested for name in inputs):
                key = _key(step, out)
                earlier = first.get(key)
                if earlier is None:
                    first[key] = out
                elif out not in program.outputs:
                    rename[out] = earlier
                    continue
        steps.append(step)
    if not rename:
        return program
    buffers = {n: b for n, b in program.buffers.items() if n not in rename}
    return Program(buffers, program.inputs, program.consts, program.outputs, steps)


def _writes(step: Step) -> set[str]:
    """The buffers ``step`` writes (inside a branch or loop: every buffer it mentions)."""
    if isinstance(step, Kernel):
        return {p.name for p in step.params if p.is_output}
    if isinstance(step, LibraryCall):
        return {step.args[-1]}
    return step_buffers(step)


def _single_output(step: Step) -> str | None:
    """The output of a kernel that writes one buffer and never reads it back (no
    ``+=`` store, no load of it); None for any other step."""
    if not isinstance(step, Kernel):
        return None
    outs = [p.name for p in step.params if p.is_output]
    if len(outs) != 1:
        return None
    reads, _ = buffers_used(step.body)
    if outs[0] in reads or read_modify_write(step.body):
        return None
    return outs[0]


def _key(kernel: Kernel, out: str) -> str:
    """``kernel`` in normal form (``simplify.canonical``) with only its output renamed:
    equal for two kernels that compute the same buffer from the same inputs."""
    return str(canonical(kernel, {out: "@out"}))


def _renamed(step: Step, rename: dict[str, str]) -> Step:
    """``step`` reading ``rename[b]`` wherever it read ``b`` (top-level steps only: a
    renamed buffer is never mentioned inside a branch or loop)."""
    if isinstance(step, LibraryCall):
        return LibraryCall(step.name, tuple(rename.get(a, a) for a in step.args), step.params)
    if isinstance(step, Kernel) and any(p.name in rename for p in step.params):
        return rename_buffers(step, rename)
    return step


__all__ = ["merge_duplicate_kernels"]
