"""Rendered SQL to compiled models: Jinja output parsed by sqlglot, checked, and described.

Owns the compiler (``compiler``: render, parse, qualify, extract window markers,
build each model's record), the records everything downstream reads (``models``:
``CompiledModel``, ``ModelSettings``, ``AsOfJoin``), column and type checks
(``checks``), the portability scan across dialects (``portability``), the
``as_of_join`` macro (``as_of_join``), resolving ``model.feature`` requests to
joined models (``features``) and spine columns (``spine_columns``), and
column-level lineage (``lineage``).

May import: the base modules, ``featuresql.sql``, ``featuresql.adapters`` (the
registry: a target's dialect is its adapter's) and ``featuresql.project``. Compiling never connects: columns a
source does not declare come through a ``columns_of`` callback.
"""
