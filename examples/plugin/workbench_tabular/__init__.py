"""A workbench task for tabular data, added through entry points (see pyproject.toml)."""
