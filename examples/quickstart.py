"""A five-minute tour of fgrad: trace, differentiate, compile.

Run:  python examples/quickstart.py
"""

import numpy as np

import fgrad
import fgrad.numpy as fnp


def loss(w, x):
    """A tiny model: tanh of a linear map, squared and summed."""
    return fnp.sum(fnp.tanh(x @ w) ** 2)


def main() -> None:
    w = fnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(3, 2))
    x = fnp.asarray(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)

    print("1. A function is traced into a jaxpr: a small typed program.")
    print(fgrad.make_jaxpr(loss)(w, x))

    print("\n2. grad transforms the program; here is the jaxpr of the gradient.")
    print(fgrad.make_jaxpr(fgrad.grad(loss))(w, x))

    g = fgrad.grad(loss)(w, x)
    print("\n   d loss / d w =\n", np.asarray(g))

    print("\n3. Transforms compose: a Jacobian (forward mode) of the gradient.")
    hess = fgrad.jacfwd(fgrad.grad(lambda v: fnp.sum(fnp.sin(v) * v)))(fnp.ones(3))
    print(np.asarray(hess))

    print("\n4. jit stages the function once per argument shapes, then reuses it.")
    fast_grad = fgrad.jit(fgrad.grad(loss))
    fast_grad(w, x)
    fast_grad(w, x)
    print("   ", fast_grad.cache_info(), "(one trace, one cache hit)")
    assert np.allclose(np.asarray(fast_grad(w, x)), np.asarray(g), rtol=1e-6)

    print("\n5. Forward and reverse mode agree (check_grads uses finite differences too).")
    from fgrad.test_util import check_grads
    check_grads(loss, (w, x), order=2, modes=("fwd", "rev"), atol=1e-2, rtol=1e-2)
    print("    check_grads passed to second order.")


if __name__ == "__main__":
    main()
