"""fgrad core: the language (dtypes, avals, pytrees, primitives, traces, jaxprs)."""
