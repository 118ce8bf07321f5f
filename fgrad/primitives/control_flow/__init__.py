"""Structured control flow as primitives: ``cond``/``switch``, ``while_loop``/``fori_loop``,
``scan``/``map``. Each holds closed jaxprs in its params and has every rule.
"""
