"""Reading what the user wrote: project.yml, profiles.yml, sources, model files, macros.

Owns the configuration models (``config``: pydantic, ``extra="forbid"``, one line
per problem naming file and key), loading a project folder into frozen records
(``loader``), targets and their secrets (``profiles``), YAML with line numbers
(``yamlfile``), the Jinja environment models render in (``jinja``), the model
graph and ``--select`` (``graph``), and the ``featuresql init`` scaffold.

May import: the base modules (``errors``, ``durations``, ``names``, ``files``),
``featuresql.sql`` (type names) and ``featuresql.adapters`` (the engine registry
that validates a target's settings). Nothing here connects to a warehouse.
"""
