"""Warehouse infrastructure and access control as code: declaration, live state, plan, apply.

Layers, top to bottom: :mod:`.service` (the façade the Context hands out) → :mod:`.plan`,
:mod:`.policy`, :mod:`.review`, :mod:`.users` → one module per engine (:mod:`.postgres`,
:mod:`.snowflake`, :mod:`.duckdb`) → :mod:`.state` (facts) and :mod:`.declaration`.
"""
