"""The warehouse to online store path: ``featuresql sync``, the store of a target, the reader's zip.

Owns which models are online and the store and manifest of a target
(``stores``), the warehouse-side mirror of what was written and its statements
(``mirror``), the sync itself (``sync``) and ``featuresql package-lambda``
(``packaging``). The stores themselves are plug-ins in ``featuresql.adapters``;
the item format and the reader are ``featuresql.serving``.

May import: everything below ``run``, ``featuresql.run`` (its state tables, and an
opened project through the ``Workspace`` protocol, never ``featuresql.context``)
and ``featuresql.serving``; not ``featuresql.extracts``.
"""
