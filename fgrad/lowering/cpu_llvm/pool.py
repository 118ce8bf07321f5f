"""Worker threads that share large products and kernels with the calling thread.

A compiled program runs on the thread that calls it. A big ``gemm`` is cut
into ``parts`` pieces (column or row blocks of the result, each its own
single-threaded BLAS call), and so is a big kernel whose outermost loop is
parallel (each piece runs a block of that loop; ``program.py``). The pieces
go to ``fgrad_parallel_for``, which publishes the job to the pool's worker
threads and then claims pieces itself, like the workers, until none is left::

    state = (generation << 32) | (pieces << 16) | next piece    (one atomic word)
    claim:  s = load(state); if gen(s) != g or next(s) == pieces(s): stop
            if compare_and_swap(state, s, s + 1): run piece next(s); done += 1

The caller only ever waits for pieces a worker has claimed and not finished:
on a busy machine, where a worker may not get a core for milliseconds, the
caller simply runs every piece itself, about as fast as one unsplit call.
(OpenBLAS's own threads wait for each other, which made two-thread runs up to
20x slower on a loaded machine.) Workers sleep in ``futex`` between jobs.

Because the generation, the piece count and the next piece live in one word,
a worker that wakes up late can never claim a piece of a newer job with an
older job's arguments: its compare-and-swap fails once the generation moved.

The pool is native code (``RUNTIME_IR`` below) in the MCJIT engine every
program shares; its worker threads are Python threads that call the native
worker loop once through ctypes (which releases the GIL) and stay inside it.
The number of threads is ``FGRAD_NUM_THREADS``, else the cores this process
may run on (``os.sched_getaffinity``); one thread means no pool at all.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import threading

from typing import Sequence

import llvmlite.binding as llvm
from llvmlite import ir

from fgrad.lowering.cpu_llvm import blas
from fgrad.lowering.cpu_llvm.irutil import I64, PTR, get_or_declare

# Measured on the 2-core machine (bench/README.md): a split pays from about 40 us of work.
SPLIT_WORK = 1 << 21  # multiply-adds of a product
SPLIT_KERNEL_WORK = 1 << 17  # element-steps of a kernel (a pass over 512 KiB of float32)
_SYS_FUTEX = 202 if platform.system() == "Linux" and platform.machine() == "x86_64" else None

# The pool's state and routines, in LLVM IR. ``@fgrad_job_*`` hold the current job's
# function and context; ``@fgrad_pool_state`` is the claim word described above;
# ``@fgrad_pool_seq`` is the generation alone, the word workers sleep on.
RUNTIME_IR = r"""
@fgrad_pool_state = global i64 0
@fgrad_pool_seq = global i32 0
@fgrad_pool_done = global i64 0
@fgrad_job_fn = global ptr null
@fgrad_job_ctx = global ptr null
@fgrad_pool_busy = global i32 0

declare i64 @syscall(i64, ...)
declare i32 @sched_yield()
declare void @llvm.x86.sse2.pause()

; Claim and run pieces of generation %gen until none is left.
define internal void @fgrad_run_pieces(i32 %gen) {
entry:
  br label %claim
claim:
  %s = load atomic i64, ptr @fgrad_pool_state acquire, align 8
  %g64 = lshr i64 %s, 32
  %g = trunc i64 %g64 to i32
  %same = icmp eq i32 %g, %gen
  %next = and i64 %s, 65535
  %n64 = lshr i64 %s, 16
  %n = and i64 %n64, 65535
  %left = icmp ult i64 %next, %n
  %go = and i1 %same, %left
  br i1 %go, label %take, label %out
take:
  %s1 = add i64 %s, 1
  %pair = cmpxchg ptr @fgrad_pool_state, i64 %s, i64 %s1 acq_rel acquire
  %won = extractvalue { i64, i1 } %pair, 1
  br i1 %won, label %run, label %claim
run:
  %fn = load ptr, ptr @fgrad_job_fn
  %ctx = load ptr, ptr @fgrad_job_ctx
  call void %fn(ptr %ctx, i64 %next)
  %d = atomicrmw add ptr @fgrad_pool_done, i64 1 release
  br label %claim
out:
  ret void
}

; The caller's side: publish the job, wake the workers, take pieces, then wait for
; the pieces workers are still running. While another thread's job holds the pool,
; the caller runs all its pieces itself.
define void @fgrad_parallel_for(ptr %fn, ptr %ctx, i64 %pieces) {
entry:
  %taken = cmpxchg ptr @fgrad_pool_busy, i32 0, i32 1 acquire monotonic
  %mine = extractvalue { i32, i1 } %taken, 1
  br i1 %mine, label %publish, label %alone
alone:
  %j = phi i64 [ 0, %entry ], [ %j1, %alone ]
  call void %fn(ptr %ctx, i64 %j)
  %j1 = add i64 %j, 1
  %more = icmp ult i64 %j1, %pieces
  br i1 %more, label %alone, label %return
publish:
  store ptr %fn, ptr @fgrad_job_fn
  store ptr %ctx, ptr @fgrad_job_ctx
  store atomic i64 0, ptr @fgrad_pool_done monotonic, align 8
  %old = load atomic i32, ptr @fgrad_pool_seq monotonic, align 4
  %gen = add i32 %old, 1
  %g64 = zext i32 %gen to i64
  %hi = shl i64 %g64, 32
  %n16 = shl i64 %pieces, 16
  %state = or i64 %hi, %n16
  store atomic i64 %state, ptr @fgrad_pool_state release, align 8
  store atomic i32 %gen, ptr @fgrad_pool_seq release, align 4
  %woken = call i64 (i64, ...) @syscall(i64 SYS_FUTEX, ptr @fgrad_pool_seq, i64 129, i64 2147483647)
  call void @fgrad_run_pieces(i32 %gen)
  br label %wait
wait:
  %spins = phi i64 [ 0, %publish ], [ %spins1, %fast ], [ %spins1, %slow ]
  %done = load atomic i64, ptr @fgrad_pool_done acquire, align 8
  %all = icmp uge i64 %done, %pieces
  br i1 %all, label %finished, label %again
again:
  %spins1 = add i64 %spins, 1
  %yield = icmp ugt i64 %spins, 2000
  br i1 %yield, label %slow, label %fast
fast:
  call void @llvm.x86.sse2.pause()
  br label %wait
slow:
  %y = call i32 @sched_yield()
  br label %wait
finished:
  store atomic i32 0, ptr @fgrad_pool_busy release, align 4
  br label %return
return:
  ret void
}

; A worker: sleep until the generation changes, take pieces, repeat (never returns).
define void @fgrad_pool_worker() {
entry:
  BLAS_ONE_THREAD
  br label %loop
loop:
  %seen = phi i32 [ 0, %entry ], [ %now, %work ], [ %seen, %sleep ]
  %now = load atomic i32, ptr @fgrad_pool_seq acquire, align 4
  %new = icmp ne i32 %now, %seen
  br i1 %new, label %work, label %sleep
work:
  call void @fgrad_run_pieces(i32 %now)
  br label %loop
sleep:
  %seen64 = zext i32 %seen to i64
  %r = call i64 (i64, ...) @syscall(i64 SYS_FUTEX, ptr @fgrad_pool_seq, i64 128, i64 %seen64,
                                    ptr null)
  br label %loop
}
"""


def threads() -> int:
    """How many threads run a split product (the caller included)."""
    if _SYS_FUTEX is None:  # (the IR above is for Linux on x86-64)
        return 1
    wanted = os.environ.get("FGRAD_NUM_THREADS")
    if wanted:
        if not wanted.strip().isdigit() or int(wanted) < 1:
            raise ValueError(f"FGRAD_NUM_THREADS must be a positive integer, got {wanted!r}")
        return int(wanted)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return 1


def parts_for(work: int) -> int:
    """Into how many pieces to cut a product of ``work`` multiply-adds (1: do not)."""
    n = threads()
    return n if n > 1 and work >= SPLIT_WORK else 1


def kernel_parts_for(work: int) -> int:
    """Into how many pieces to cut a parallel kernel of ``work`` element-steps."""
    n = threads()
    return n if n > 1 and work >= SPLIT_KERNEL_WORK else 1


@functools.lru_cache(maxsize=None)
def start() -> int:
    """Compile the pool's runtime into the shared engine and start its workers (once);
    the address of ``fgrad_parallel_for``."""
    from fgrad.lowering.cpu_llvm.compile import add_runtime_module
    text = RUNTIME_IR.replace("SYS_FUTEX", str(_SYS_FUTEX))
    one = "call i32 @fgrad_blas_threads(i32 1)" if blas.has_thread_control() else ""
    if one:
        text = "declare i32 @fgrad_blas_threads(i32)\n" + text
    text = text.replace("BLAS_ONE_THREAD", f"%prev = {one}" if one else "")
    addresses = add_runtime_module(text, ["fgrad_parallel_for", "fgrad_pool_worker"])
    llvm.add_symbol("fgrad_parallel_for", addresses[0])
    worker = ctypes.CFUNCTYPE(None)(addresses[1])
    for k in range(threads() - 1):
        threading.Thread(target=worker, name=f"fgrad-pool-{k}", daemon=True).start()
    _workers.append(worker)  # keep the ctypes function alive
    return addresses[0]


_workers: list[object] = []


# --- the two halves of a split step, in a program's LLVM IR ------------------------------------

def piece_function(module: ir.Module, name: str, nptrs: int, extent: int, parts: int
                   ) -> tuple[ir.IRBuilder, list[ir.Value], ir.Value, ir.Value]:
    """Start ``void name(ptr ctx, i64 j)``, the piece ``j`` of ``parts`` of a loop over
    ``extent``: returns a builder placed where the piece's work goes (reached only if
    its block is not empty), the ``nptrs`` pointers read from ``ctx``, and the block's
    ``start`` and ``stop``. The caller emits the work and ``ret void``."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64]), name=name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ctx, j = fn.args
    pointers = [b.load(b.gep(ctx, [ir.Constant(I64, x)], source_etype=PTR), typ=PTR)
                for x in range(nptrs)]
    step = -(-extent // parts)
    start = b.mul(j, ir.Constant(I64, step))
    stop = b.add(start, ir.Constant(I64, step))
    stop = b.select(b.icmp_signed("<", stop, ir.Constant(I64, extent)), stop,
                    ir.Constant(I64, extent))
    work, empty = fn.append_basic_block("work"), fn.append_basic_block("empty")
    b.cbranch(b.icmp_signed("<", start, stop), work, empty)
    b.position_at_end(empty)
    b.ret_void()
    b.position_at_end(work)
    return b, pointers, start, stop


def call_parallel_for(module: ir.Module, b: ir.IRBuilder, piece: ir.Function,
                      pointers: Sequence[ir.Value], parts: int) -> None:
    """At ``b``: run ``piece(ctx, j)`` for j < ``parts`` on the pool, ``ctx`` holding
    ``pointers`` (starts the pool at the first program that uses it)."""
    start()
    parallel_for = get_or_declare(module, "fgrad_parallel_for",
                                  ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]))
    with b.goto_entry_block():
        ctx = b.alloca(PTR, size=ir.Constant(I64, len(pointers)), name="pieces_ctx")
    for x, pointer in enumerate(pointers):
        b.store(pointer, b.gep(ctx, [ir.Constant(I64, x)], source_etype=PTR))
    b.call(parallel_for, [piece, ctx, ir.Constant(I64, parts)])


__all__ = ["threads", "parts_for", "kernel_parts_for", "start", "piece_function",
           "call_parallel_for", "SPLIT_WORK", "SPLIT_KERNEL_WORK", "RUNTIME_IR"]
