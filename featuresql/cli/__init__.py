"""The ``featuresql`` command: thin click commands calling the core, and what they print.

Owns the commands and the one error handler (``main``: a featuresql error is a
red line and an exit code, a traceback only with ``--debug``), shared options
(``options``) and the printed progress, summaries and listings (``output``).

May import: every stage (it is the top), through ``featuresql.context`` where it can.
"""
