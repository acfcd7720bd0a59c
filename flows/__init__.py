"""Prefect flows: each module wires tasks and holds no logic of its own."""
