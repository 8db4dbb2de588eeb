"""flightdeck's policy pack rules (pure checks over plain data, wrapped for pulumi-policy).

Importable without an engine: nothing here starts a server or reads a file. ``policy/__main__.py``
serves ``all_policies()`` as the pack.
"""
