"""This project's own tests: a package, so every module has one name for pytest and mypy."""
