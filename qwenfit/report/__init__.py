"""What the command prints as data: the ``--json`` objects (:mod:`.json`, plain dicts, no pydantic)
and their contract (:mod:`.schema`, pydantic models and the JSON Schema)."""
