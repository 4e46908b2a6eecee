"""SQL building blocks, as sqlglot expressions for any dialect: the lowest stage with SQL in it.

Owns the dialect differences (``dialects``: one function per construct whose
spelling differs per engine), SQL type families (``types``), the window
aggregation catalogue and the records of a window model (``windows``), the
change-point query of window models (``window_query``, ``window_parts``) and the
point-in-time join (``point_in_time``). Each construct is built once here;
callers render it per dialect.

May import: the base modules only (``errors``, ``durations``, ``names``), and sqlglot.
"""
