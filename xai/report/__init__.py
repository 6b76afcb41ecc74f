"""Renderers of results: HTML, JSON and terminal (none of them touches a model)."""
