"""``featuresql docs``: a static catalog site of the project (models, features, services, sources, lineage).

``featuresql docs generate`` writes ``target/docs/index.html`` (HTML, CSS, JavaScript
and the catalog inline: it opens from ``file://`` with no server and no internet)
and ``target/docs/catalog.json``; ``featuresql docs serve`` serves that folder.

Modules, one responsibility each:

- ``docs_blocks``: dbt's ``{% docs name %}`` blocks and ``{{ doc('name') }}`` in descriptions;
- ``warehouse``: what the target knows (column types, run log, freshness), read without creating anything;
- ``model_entry``, ``columns``, ``attached_tests``, ``reading``: the parts of one model's entry;
- ``on_demand_entry``: one on-demand model's entry (request columns, features as expressions, no table);
- ``service_entry``: one feature service's entry (its features as the model entries show them);
- ``catalog``: the whole catalog document (``catalog.json``);
- ``site``: the site's files; ``assets/`` holds its HTML, CSS and JavaScript;
- ``server``: the static file server of ``docs serve``.

May import: every stage below it, ``featuresql.context`` and ``featuresql.testing`` (the tests
attached to a model); not ``featuresql.cli``.
"""

from __future__ import annotations
