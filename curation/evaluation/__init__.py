"""Scoring what a run learned: pure statistics (bootstrap intervals, McNemar, paired differences, verdicts) and the project's objective."""
