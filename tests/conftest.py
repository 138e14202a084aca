"""Configuration of this project's own tests; the fixtures come from the `pikku` plugin."""

from __future__ import annotations

import os

from hypothesis import settings

# Backends on real servers are slower than Hypothesis's default deadline expects; `ci` also
# prints the blob that reproduces a failure.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
