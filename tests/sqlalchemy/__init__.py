"""Tests of the sqlalchemy backend."""
