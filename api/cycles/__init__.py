"""Periods and scheduled work for operators: `points cycle status|close|statement` and period
statements as PDF and xlsx."""
