"""Tests of the redis backend."""
