"""The run id converter's regular expression accepts exactly 1..2^31-1."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from runs_service.api.converters import positive_integer_regex

MAX = 2**31 - 1


def matches(maximum: int, text: str) -> bool:
    return re.fullmatch(positive_integer_regex(maximum), text) is not None


def test_boundaries_of_the_run_id_range():
    for accepted in ("1", "9", "10", str(MAX), str(MAX - 1), "1999999999", "2147483639"):
        assert matches(MAX, accepted), accepted
    for refused in ("0", "01", str(MAX + 1), "2147483650", "9999999999", str(2**64), "-1", ""):
        assert not matches(MAX, refused), refused


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=-10, max_value=10**7))
def test_matches_exactly_the_integers_in_range(maximum, number):
    assert matches(maximum, str(number)) == (1 <= number <= maximum)
