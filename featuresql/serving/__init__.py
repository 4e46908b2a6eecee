"""The online reader and what it shares with `featuresql sync`: standard library (and boto3) only.

Nothing here imports the rest of featuresql, sqlglot, pyarrow or pydantic, so the
reader starts fast in a Lambda container (tests/test_imports.py checks it).

May import: nothing of featuresql outside ``featuresql.serving`` (tests/test_architecture.py checks it).
"""
