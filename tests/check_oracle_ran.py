"""CI guard: the oracle test suite must not be able to skip silently.

JAX is fgrad's test oracle. The oracle tests import it unconditionally, so
a missing JAX makes them error rather than skip; this script makes the
failure explicit in CI, and also rejects any ``pytest.importorskip("jax")``
that would turn a missing oracle from red into green.

Usage: ``python tests/check_oracle_ran.py`` (exit code 0 when all is well,
1 with a message otherwise).
"""

from __future__ import annotations

import os
import re
import sys

_TESTS = os.path.dirname(os.path.abspath(__file__))
_SKIP_JAX = re.compile(r"""importorskip\(\s*["']jax""")


def main() -> int:
    try:
        import jax
        import jax.numpy as jnp
    except Exception as e:  # ImportError, or a broken install
        print(f"check_oracle_ran: FAILED: JAX (the test oracle) cannot be imported: {e!r}.\n"
              "Install the test extras: pip install -e '.[test]'", file=sys.stderr)
        return 1
    try:
        value = float(jnp.sin(jnp.float32(0.5)))
    except Exception as e:
        print(f"check_oracle_ran: FAILED: JAX imports but cannot compute: {e!r}",
              file=sys.stderr)
        return 1
    if abs(value - 0.479425538604203) > 1e-6:
        print(f"check_oracle_ran: FAILED: jax.numpy.sin(0.5) = {value}", file=sys.stderr)
        return 1
    offenders = []
    for root, _, files in os.walk(_TESTS):
        for name in files:
            if name.endswith(".py") and name != os.path.basename(__file__):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    if _SKIP_JAX.search(f.read()):
                        offenders.append(os.path.relpath(path, os.path.dirname(_TESTS)))
    if offenders:
        print("check_oracle_ran: FAILED: oracle tests must not skip when JAX is missing; "
              f"remove pytest.importorskip('jax') from: {', '.join(offenders)}", file=sys.stderr)
        return 1
    print(f"check_oracle_ran: ok (jax {jax.__version__} is importable and computes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
