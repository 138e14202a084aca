"""The plugin's terminal summary counts skipped tests by reason (issue 13 item 10)."""

from __future__ import annotations

import pytest

SAMPLE = """
import pytest


@pytest.mark.parametrize("n", range(3))
def test_needs_a_server(n):
    pytest.skip("no server configured")


def test_needs_an_extra():
    pytest.skip("an extra is missing")


def test_runs():
    pass
"""


def test_skips_are_summarised_by_reason_with_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample=SAMPLE)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*pikku: skipped tests by reason*",
            "     3  no server configured",
            "     1  an extra is missing",
        ]
    )
