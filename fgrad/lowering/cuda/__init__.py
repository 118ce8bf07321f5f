"""The CUDA backend: kernel IR printed as CUDA C (``render.py``), checked without a GPU by
NVRTC + ``ptxas`` (``toolchain.py``) and by a CPU emulator (``emulator/``), run on a GPU
through cupy (``runtime.py``). Nothing here imports cupy at import time."""
