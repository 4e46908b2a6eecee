"""SQL unit tests: fixture rows in, a model's expected rows out, on DuckDB in memory.

Owns the YAML format and its checks (``spec``), fixture tables and literals
(``fixtures``), running a test's models on them as ``featuresql run`` does
(``runs``), comparing and showing differences (``diff``) and the test cases the
runner sees (``cases``).

May import: what ``featuresql.testing`` may.
"""
