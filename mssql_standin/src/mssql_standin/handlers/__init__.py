"""EngineSession's statement handlers, one module per statement family; engine.py maps each statement kind
to its handler."""
