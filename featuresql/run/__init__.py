"""``featuresql run``: planning, executing and recording incremental builds on a warehouse.

Owns half-open boundary intervals (``intervals``), what to compute
(``planning``) and the statements that compute it (``statements``), executing a
model's batches in transactions (``execution``) and many models in DAG order
(``runner``), the state and run log tables (``state``), the run lock
(``locks``), the results of runs and test runs (``results``), the artifacts
written after them (``artifacts``) and the narrow view of an opened project the
stages above use (``workspace``).

May import: the base modules, ``featuresql.sql``, ``featuresql.adapters``,
``featuresql.project`` and ``featuresql.compile``.
"""
