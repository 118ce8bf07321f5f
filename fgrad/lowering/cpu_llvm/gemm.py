"""fgrad's own matrix product for AVX-512 CPUs: register tiles of C, operands read in place.

    C = alpha * op(A) @ B  [+ C]        row-major; op(A) is A or A^T; B not transposed

A BLAS first *packs* its operands: it copies blocks of A and B into buffers laid
out in the order its inner kernel reads them. For the products of a training
step (a batch of 128 rows against a weight matrix of a few hundred columns) the
packing is most of what separates a BLAS from the machine's peak: profiled here,
OpenBLAS 0.3.30 spends 15% of ``x @ w`` (128x784 by 784x512) copying ``w``.

When B is not transposed, row ``k`` of B already holds the numbers a tile of C
needs from it, side by side, so this routine reads B where it lies. A tile of
``MR`` rows by ``NV`` vectors of C (8 x 32 float32, 8 x 16 float64) lives in 16
vector registers while ``k`` runs along the contraction::

    for k in block:                          # the micro-kernel (``_tile``)
        b0, b1 = B[k, j:j+16], B[k, j+16:j+32]        (two vector loads)
        for r in 0..7:
            a = broadcast(op(A)[i+r, k])                 (one scalar load)
            acc[r][0] += a * b0;  acc[r][1] += a * b1    (two fused multiply-adds)

16 multiply-adds for 10 loads: the multiply-add units, not the loads, set the
pace. A product of at most 16 columns (an im2col convolution's, a 10-way
classifier's) uses a narrow tile instead, 16 rows by one vector, which keeps
all 16 accumulators busy where the wide one would leave half masked off.

The loops around the tile (``_blocked``) keep the data a tile reads in cache:
``KC`` steps of ``k`` at a time (a strip of B, ``KC`` x 32, stays in L1/L2 while
the tiles of a block of ``MC`` rows reuse it) and blocks of ``MC`` rows of A
(``MC`` x ``KC``, in L2). A large A streams from memory, and the tile's rows, read
side by side, defeat the hardware prefetcher, so each step of the tile
prefetches one row of the next tile. Edges need no second kernel: the last
columns use masked loads and stores, and the last rows re-read a valid row of A
and are not stored.

Measured on the 2-core Zen 4 VM (``bench/README.md``), one thread: 0.78-0.97x
OpenBLAS's time over a grid of medium products (``x @ w``, 128x784 by 784x512:
0.92 ms, OpenBLAS 1.07, XLA 0.98), 0.3-0.7x on a CNN's thin products with a
large A (50176x144x32: 4.2 ms, OpenBLAS 7.4). Without packing it loses on large
products (2048^3: 1.1-1.3x over runs), where a block of A outgrows L2 and a strip of B spans
more cache sets than it fits in, and on small ones (under 1M multiply-adds)
where BLAS's small-matrix kernels win; ``use_for`` keeps those on BLAS. In
float64 (tiles of 8 x 16 and 16 x 8) it ties with OpenBLAS, so float64 products
stay on BLAS too (the routine is built and tested for both). It is used only
where the host has AVX-512: its tiles are sized for 32 vector registers.

A program calls it like BLAS (``program.py``, ``_call_gemm``), so its IR is not in
``jit(f).lower(...).as_text("llvm")``; ``print(module_text(np.float32))`` shows it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Iterator

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from fgrad.lowering.cpu_llvm.irutil import I1, I64, PTR, for_range, get_or_declare, llvm_type

WIDE, NARROW = (8, 2), (16, 1)  # tiles of C: (MR rows, NV vectors); 16 accumulators each
MR, NV = WIDE
KC, MC = 256, 256  # contraction steps per block; rows of A per block
VECTOR_BYTES = 64  # AVX-512
PREFETCH = 16  # contraction steps ahead that the tile prefetches the next tile's rows of A
# the products it takes (``use_for``): multiply-adds, bytes of A and of B
MIN_WORK, MAX_A_BYTES, MAX_B_BYTES = 1 << 20, 3 << 19, 1 << 18


def lanes(dtype: np.dtype) -> int:
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def symbol(dtype: np.dtype) -> str:
    return f"fgrad_gemm_{np.dtype(dtype).name}"


@functools.lru_cache(maxsize=None)
def host_supported() -> bool:
    """Does the host have AVX-512 (the tile's 16 accumulators and 4 operands need 32
    vector registers; with 16, as on AVX2, they would spill)?"""
    return "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")


def can_run(dtype: np.dtype, m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> bool:
    """Does the routine compute this product (whatever its speed)?"""
    return np.dtype(dtype) in (np.float32, np.float64) and not trans_b and min(m, n, k) > 0


def use_for(dtype: np.dtype, m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> bool:
    """Should a product run here rather than in BLAS? Where it measured faster
    (``bench/gemm.py``, results in ``bench/README.md``): float32 (in float64 it ties
    with OpenBLAS) and enough work to hide the tiles' edges (1M multiply-adds); then

    * at most one vector of columns (the narrow tile): always, but for rows of A a
      multiple of 4 KiB apart (the tile's 16 rows would share one set of the 8-way L1
      cache: 512x2048x10 took 1.6x OpenBLAS's time; 64x25088x10 0.64x);
    * more: columns that fill at least 90% of the wide tiles' lanes (n = 20 or 40
      leave too many masked off), and with more than one tile of columns (the tiles
      of a block of rows re-read its rows of A, the blocks of rows re-read B) either A
      of at most 1.5 MiB in one block of rows or of the contraction, or one block of
      the contraction with B of at most 256 KiB (with larger operands in several
      blocks of both, 500x300x200 and up, BLAS's packed blocks win by 2-10%)."""
    if not (can_run(dtype, m, n, k, trans_a, trans_b) and host_supported()
            and np.dtype(dtype) == np.float32 and m * n * k >= MIN_WORK):
        return False
    w = lanes(dtype)
    if n <= w:
        return trans_a or (k * 4) % 4096 != 0
    if n < 0.9 * NV * w * -(-n // (NV * w)):
        return False
    return (n <= NV * w or (m * k * 4 <= MAX_A_BYTES and min(m - MC, k - KC) <= 0)
            or (k <= KC and k * n * 4 <= MAX_B_BYTES))


# --- the routine, in LLVM IR --------------------------------------------------------------------

def signature(dtype: np.dtype) -> ir.FunctionType:
    """``void(i64 trans_a, i64 m, i64 n, i64 k, T alpha, ptr A, i64 lda, ptr B, i64 ldb,
    ptr P, ptr C, i64 ldc)``: ``C = P + alpha * op(A) @ B``, P laid out as C (row
    stride ``ldc``), or ``C = alpha * op(A) @ B`` when P is null. P may be C itself
    (``C += ...``); it is read where the first block of the contraction is stored, so
    an optimizer's ``w - lr * g`` needs no copy of ``w`` into C first."""
    t = llvm_type(dtype)
    return ir.FunctionType(ir.VoidType(), [I64, I64, I64, I64, t, PTR, I64, PTR, I64, PTR,
                                           PTR, I64])


def _tile(module: ir.Module, dtype: np.dtype, shape: tuple[int, int], masked: bool
          ) -> ir.Function:
    """``tile(a, sr, sk, b, ldb, c, ldc, src, kc, rows, cols, alpha, add)``: C[:rows, :cols]
    = alpha * sum over kc steps of op(A)[r, k] * B[k, :] (+ ``src``'s block if ``add``:
    the addend, or C itself after the first block of the contraction), for a tile of
    ``shape`` = (MR rows, NV vectors). Element (r, k) of op(A) is at ``a + r*sr + k*sk``.
    ``masked``: cols may be fewer than the tile's NV vectors."""
    t, w = llvm_type(dtype), lanes(dtype)
    vec = ir.VectorType(t, w)
    MR, NV = shape  # noqa: N806 (the names of the module's docstring)
    name = (f"fgrad_gemm_tile{MR}x{NV}_{np.dtype(dtype).name}"
            f"{'_masked' if masked else ''}")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [
        PTR, I64, I64, PTR, I64, PTR, I64, PTR, I64, I64, I64, t, I1]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    for arg in (0, 3):  # (C and src may be one buffer)
        fn.args[arg].add_attribute("noalias")
    _name_args(fn, "a sr sk b ldb c ldc src kc rows cols alpha add")
    a, sr, sk, bp, ldb, cp, ldc, src, kc, rows, cols, alpha, add = fn.args
    entry, loop, done = (fn.append_basic_block(x) for x in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    fma = get_or_declare(module, f"llvm.fma.{_suffix(vec)}", ir.FunctionType(vec, [vec] * 3))
    zero = ir.Constant(vec, None)

    def const(x: int) -> ir.Constant:
        return ir.Constant(I64, x)

    masks = []
    if masked:  # lane l of vector v is column v*w + l: kept if below cols
        lane_index = ir.Constant(ir.VectorType(I64, w), list(range(w)))
        for v in range(NV):
            limit = _splat(b, b.sub(cols, const(v * w)), lane_index.type)
            masks.append(b.icmp_signed("<", lane_index, limit))
    # rows past the edge read the last valid row of A (in bounds), and are not stored
    last = b.sub(rows, const(1))
    row_ptrs = []
    for r in range(MR):
        row = b.select(b.icmp_signed("<", const(r), rows), const(r), last)
        row_ptrs.append(b.gep(a, [b.mul(row, sr)], source_etype=t, name=f"a_row{r}"))
    b.branch(loop)

    b.position_at_end(loop)
    k = b.phi(I64, "k")
    k.add_incoming(const(0), entry)
    acc = [[b.phi(vec, f"acc{r}_{v}") for v in range(NV)] for r in range(MR)]
    b_row = b.gep(bp, [b.mul(k, ldb)], source_etype=t, name="b_row")
    b_vecs = []
    for v in range(NV):
        at = b.gep(b_row, [const(v * w)], source_etype=t)
        b_vecs.append(masked_load(module, b, at, vec, masks[v], zero) if masked
                      else b.load(at, typ=vec, align=np.dtype(dtype).itemsize, name=f"b{v}"))
    a_offset = b.mul(k, sk)
    # Prefetch row (k mod MR) of the next tile of rows, PREFETCH steps ahead: a large A
    # (a CNN's im2col patches, 29 MB) streams from memory, and 8 rows read side by side
    # defeat the hardware's prefetcher (measured: 50176x144x32 6.3 -> 4.2 ms, peak speed)
    prefetch = get_or_declare(module, "llvm.prefetch.p0", ir.FunctionType(
        ir.VoidType(), [PTR, ir.IntType(32), ir.IntType(32), ir.IntType(32)]))
    which = b.urem(k, const(MR))
    ahead = b.add(b.mul(b.add(which, const(MR)), sr), b.mul(b.add(k, const(PREFETCH)), sk))
    i32 = ir.IntType(32)
    b.call(prefetch, [b.gep(a, [ahead], source_etype=t, name="next_rows"),  # (never faults)
                      ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    new = []
    for r in range(MR):
        a_rk = _splat(b, b.load(b.gep(row_ptrs[r], [a_offset], source_etype=t), typ=t,
                                name=f"a{r}"), vec)
        new.append([b.call(fma, [a_rk, b_vecs[v], acc[r][v]], name=f"acc{r}_{v}.next")
                    for v in range(NV)])
    for r in range(MR):
        for v in range(NV):
            acc[r][v].add_incoming(zero, entry)
            acc[r][v].add_incoming(new[r][v], loop)
    k_next = b.add(k, const(1), flags=["nsw"], name="k.next")
    k.add_incoming(k_next, loop)
    b.cbranch(b.icmp_signed("<", k_next, kc), loop, done)

    # store each row that exists: alpha * acc (+ src)
    b.position_at_end(done)
    alphas = _splat(b, alpha, vec)
    for r in range(MR):
        store_row, next_row = fn.append_basic_block(f"row{r}"), fn.append_basic_block(f"after{r}")
        b.cbranch(b.icmp_signed("<", const(r), rows), store_row, next_row)
        b.position_at_end(store_row)
        c_row = b.gep(cp, [b.mul(const(r), ldc)], source_etype=t)
        src_row = b.gep(src, [b.mul(const(r), ldc)], source_etype=t)
        for v in range(NV):
            at = b.gep(c_row, [const(v * w)], source_etype=t)
            from_ = b.gep(src_row, [const(v * w)], source_etype=t)
            old = (masked_load(module, b, from_, vec, masks[v], zero) if masked
                   else b.load(from_, typ=vec, align=np.dtype(dtype).itemsize))
            value = b.select(add, b.call(fma, [alphas, new[r][v], old]),
                             b.fmul(alphas, new[r][v]))
            if masked:
                masked_store(module, b, value, at, masks[v])
            else:
                b.store(value, at, align=np.dtype(dtype).itemsize)
        b.branch(next_row)
        b.position_at_end(next_row)
    b.ret_void()
    return fn


def _name_args(fn: ir.Function, names: str) -> None:
    for arg, name in zip(fn.args, names.split(), strict=True):
        arg.name = name


def _splat(b: ir.IRBuilder, x: ir.Value, vec: ir.VectorType) -> ir.Value:
    """A vector of ``vec.count`` copies of the scalar ``x``."""
    one = b.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(I64, 0))
    return b.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count))


def masked_load(module: ir.Module, b: ir.IRBuilder, at: ir.Value, vec: ir.VectorType,
                mask: ir.Value, passthru: ir.Value) -> ir.Value:
    """The lanes of ``vec`` at ``at`` that ``mask`` keeps (the others: ``passthru``;
    their memory is not touched)."""
    fn = get_or_declare(module, f"llvm.masked.load.{_suffix(vec)}.p0", ir.FunctionType(
        vec, [PTR, ir.IntType(32), mask.type, vec]))
    return b.call(fn, [at, _align(vec), mask, passthru])


def masked_store(module: ir.Module, b: ir.IRBuilder, value: ir.Value, at: ir.Value,
                 mask: ir.Value) -> None:
    fn = get_or_declare(module, f"llvm.masked.store.{_suffix(value.type)}.p0", ir.FunctionType(
        ir.VoidType(), [value.type, PTR, ir.IntType(32), mask.type]))
    b.call(fn, [value, at, _align(value.type), mask])


def _suffix(vec: ir.VectorType) -> str:
    """The type suffix of an intrinsic on ``vec``: v16f32, v8f64."""
    return f"v{vec.count}{'f32' if isinstance(vec.element, ir.FloatType) else 'f64'}"


def _align(vec: ir.VectorType) -> ir.Constant:
    return ir.Constant(ir.IntType(32), 4 if isinstance(vec.element, ir.FloatType) else 8)


def _driver(module: ir.Module, dtype: np.dtype) -> ir.Function:
    """The routine (``signature``): the narrow tile for a product of at most one vector
    of columns (the wide tile would leave half its registers masked off), else the
    wide one, each in its loop nest (``_blocked``)."""
    fn = ir.Function(module, signature(dtype), name=symbol(dtype))
    _name_args(fn, "trans_a m n k alpha a lda b ldb addend c ldc")
    wide, narrow = _blocked(module, dtype, WIDE), _blocked(module, dtype, NARROW)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n = fn.args[2]
    one_vector = b.icmp_signed("<=", n, ir.Constant(I64, lanes(dtype)))
    with b.if_else(one_vector) as (then, otherwise):
        with then:
            b.call(narrow, fn.args)
        with otherwise:
            b.call(wide, fn.args)
    b.ret_void()
    return fn


def _blocked(module: ir.Module, dtype: np.dtype, shape: tuple[int, int]) -> ir.Function:
    """The routine's loop nest for tiles of ``shape``: blocks of KC contraction steps,
    of MC rows, then tiles of NV vectors of columns by MR rows, each computed by
    ``_tile`` (its masked variant for the last columns)."""
    t, w = llvm_type(dtype), lanes(dtype)
    MR, NV = shape  # noqa: N806
    full = _tile(module, dtype, shape, masked=False)
    masked = _tile(module, dtype, shape, masked=True)
    fn = ir.Function(module, signature(dtype), name=f"{symbol(dtype)}_{MR}x{NV}")
    fn.linkage = "internal"
    _name_args(fn, "trans_a m n k alpha a lda b ldb addend c ldc")
    ta, m, n, k, alpha, a, lda, bp, ldb, addend, cp, ldc = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    one = ir.Constant(I64, 1)
    # element (r, k) of op(A): a + r*sr + k*sk
    transposed = b.icmp_signed("!=", ta, ir.Constant(I64, 0))
    sr, sk = b.select(transposed, one, lda), b.select(transposed, lda, one)

    @contextlib.contextmanager
    def blocks(total: ir.Value, step: int, name: str) -> Iterator[tuple[ir.Value, ir.Value]]:
        """A loop over the blocks of ``step`` of ``total``; yields (start, size)."""
        size = ir.Constant(I64, step)
        with for_range(b, b.sdiv(b.add(total, ir.Constant(I64, step - 1)), size), name) as x:
            start = b.mul(x, size)
            left = b.sub(total, start)
            yield start, b.select(b.icmp_signed("<", left, size), left, size)

    with blocks(k, KC, "kblock") as (k0, kc):
        # the first block adds to the addend (if any), the others to C itself
        first = b.icmp_signed("==", k0, ir.Constant(I64, 0))
        has_addend = b.icmp_unsigned("!=", addend, ir.Constant(PTR, None))
        add = b.or_(has_addend, b.not_(first))
        src = b.select(b.and_(first, has_addend), addend, cp)
        a_k = b.gep(a, [b.mul(k0, sk)], source_etype=t)
        b_k = b.gep(bp, [b.mul(k0, ldb)], source_etype=t)
        with blocks(m, MC, "iblock") as (i0, mc), blocks(n, NV * w, "jtile") as (j, cols), \
                blocks(mc, MR, "itile") as (r, rows):
            i = b.add(i0, r)
            at_ij = b.add(b.mul(i, ldc), j)
            args = [b.gep(a_k, [b.mul(i, sr)], source_etype=t), sr, sk,
                    b.gep(b_k, [j], source_etype=t), ldb, b.gep(cp, [at_ij], source_etype=t),
                    ldc, b.gep(src, [at_ij], source_etype=t), kc, rows, cols, alpha, add]
            whole, edge, after = (fn.append_basic_block(x) for x in ("whole", "edge", "after"))
            b.cbranch(b.icmp_signed("==", cols, ir.Constant(I64, NV * w)), whole, edge)
            for block, tile in ((whole, full), (edge, masked)):
                b.position_at_end(block)
                b.call(tile, args)
                b.branch(after)
            b.position_at_end(after)
    b.ret_void()
    return fn


def module_text(dtype: np.dtype) -> str:
    """The routine for ``dtype`` as LLVM IR text (``print`` it to read the tile)."""
    module = ir.Module(name=f"fgrad_gemm_{np.dtype(dtype).name}")
    _driver(module, np.dtype(dtype))
    return str(module)


_registered: set[str] = set()
_register_lock = threading.Lock()


def register(dtype: np.dtype) -> None:
    """Compile the routine for ``dtype`` into the shared engine (once per process, for
    the first program that uses it; about 40 ms) and name it for the JIT (``symbol``).
    The IR is already the loop nest we want: LLVM's light pipeline and its -O3 machine
    code make it as fast as the full pipeline, which also unrolls the tile's loop
    (measured: no faster, and twice the compile time)."""
    from fgrad.lowering.cpu_llvm.compile import add_runtime_module
    name = symbol(dtype)
    with _register_lock:  # two threads compiling programs at once must not add it twice
        if name not in _registered:
            llvm.add_symbol(name, add_runtime_module(module_text(dtype), [name])[0])
            _registered.add(name)


__all__ = ["can_run", "use_for", "register", "module_text", "symbol", "signature",
           "host_supported", "lanes", "WIDE", "NARROW", "KC", "MC"]
