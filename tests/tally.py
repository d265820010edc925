"""Counts of what the property-based tests fed the public API, for the reliability report."""

from collections import Counter

#: ``(what, outcome) -> count``; outcome is "accepted", "ValueError" or "TypeError".
TALLY: Counter[tuple[str, str]] = Counter()
