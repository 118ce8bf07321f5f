"""The CPU backend: kernel IR printed as LLVM IR (llvmlite), compiled for the host CPU.

``render.py`` turns one kernel into an LLVM function, ``program.py`` a whole
``Program`` into LLVM modules (the kernels plus one entry point that runs
them all and calls BLAS for matrix products), ``compile.py`` optimizes and
JIT-compiles them, ``runtime.py`` checks buffers and calls the entry point
once per ``jit`` call.
"""
