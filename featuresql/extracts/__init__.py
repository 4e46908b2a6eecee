"""``featuresql extract``: point-in-time training sets, computed in the warehouse.

Owns staging a spine (a table, a local file, a DataFrame or an Arrow table) in
the warehouse (``spine``) and the extract itself: check, join, deliver to a file,
a table or Arrow (``training_set``). The join is ``featuresql.sql.point_in_time``.

May import: everything below ``run`` and ``featuresql.run`` (through the
``Workspace`` protocol, never ``featuresql.context``); not ``featuresql.online``.
"""
