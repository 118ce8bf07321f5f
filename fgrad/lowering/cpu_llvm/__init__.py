"""The CPU backend: kernel IR printed as LLVM IR (llvmlite), compiled for the host CPU.

``render.py`` turns a ``Program`` into one LLVM module (a function per kernel
plus one entry point that runs them all and calls BLAS for matrix products),
``compile.py`` optimizes and JIT-compiles it, ``runtime.py`` checks buffers
and calls the entry point once per ``jit`` call.
"""
