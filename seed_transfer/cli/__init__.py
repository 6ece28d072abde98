"""Command lines of the tools (``tools/*.py`` and the console scripts in ``pyproject.toml``)."""
