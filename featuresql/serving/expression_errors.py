"""The error of evaluating an on-demand program (stdlib only; ``featuresql.serving.expressions``)."""

from __future__ import annotations


class EvaluationError(Exception):
    """A value the warehouse would refuse too: an overflow, an integer division by zero."""
