"""``featuresql test``: data tests, singular SQL tests, SQL unit tests, freshness,
the point-in-time checks and the online/offline check (DESIGN.md section 8).

See ``cases`` for what a test is to the runner, and one module per kind.

May import: every stage below it and ``featuresql.context``; not ``featuresql.docs`` or ``featuresql.cli``.
"""
