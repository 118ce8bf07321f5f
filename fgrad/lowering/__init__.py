"""From jaxprs to running code.

* ``kernel_ir.py``: the loop language kernels are written in;
  ``semantics.py`` and ``interpret.py`` define it by running it with numpy;
* ``views.py``: reading arrays through movement ops without copies;
* ``schedule.py``: a jaxpr becomes a ``Program`` of kernels and library calls;
* ``backends.py``: the backends ``jit`` can use, registered with it.

This package's ``__init__`` imports nothing, so family files may import the
kernel IR to declare their lowering rules without an import cycle.
"""
