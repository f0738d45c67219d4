"""Pure arithmetic: stdlib only, no I/O, no network (ARCHITECTURE.md)."""
