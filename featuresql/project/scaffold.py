"""`featuresql init NAME`: a new project that runs as is on the embedded DuckDB target."""

from __future__ import annotations

from pathlib import Path

from featuresql.errors import ConfigError
from featuresql.project.config import IDENTIFIER

_FILES = {
    "project.yml": """\
name: {name}
version: 0.1.0
dialect: duckdb

defaults:
  grain: 1d

entities:
  customer:
    keys: {{customer_id: bigint}}

vars:
  sample_orders: 20000

# Creates a small sample table so the project runs as is; replace with your own sources.
on_run_start:
  - "{{{{ create_sample_orders() }}}}"
""",
    "profiles.yml": """\
target: dev
targets:
  dev:
    type: duckdb
    path: target/{name}.duckdb
""",
    "features/sources.yml": """\
version: 1
sources:
  - name: shop
    schema: raw
    tables:
      - name: orders
        event_time: ordered_at
        columns:
          - {{name: order_id, type: bigint}}
          - {{name: customer_id, type: bigint}}
          - {{name: amount, type: double}}
          - {{name: ordered_at, type: timestamp}}
""",
    "features/customer_orders.sql": """\
{{{{ config(entity='customer', timestamp='ordered_at', grain='1 day') }}}}
select
    customer_id,
    ordered_at,
    {{{{ window_count(windows=['7d', '30d']) }}}},
    {{{{ window_sum('amount', windows=['7d', '30d']) }}}},
    {{{{ window_avg('amount', windows=['30d']) }}}}
from {{{{ source('shop', 'orders') }}}}
""",
    "features/schema.yml": """\
version: 1
models:
  - name: customer_orders
    description: Order count and spend per customer over 7 and 30 days.
    tests:
      - unique: {{columns: [customer_id, ordered_at]}}
    columns:
      - name: customer_id
        tests: [not_null]
      - name: amount_sum_30d
        tests:
          - accepted_range: {{min_value: 0}}
""",
    "tests/unit/customer_orders.yml": """\
# `featuresql test -s test_type:unit` runs these on DuckDB in memory: rows in, rows out.
unit_tests:
  - name: customer_orders_of_one_customer
    model: customer_orders
    given:
      - input: source('shop', 'orders')
        rows:
          - {{order_id: 1, customer_id: 1, amount: 10.0, ordered_at: 2026-01-01 09:00:00}}
          - {{order_id: 2, customer_id: 1, amount: 30.0, ordered_at: 2026-01-03 18:00:00}}
    expect:
      at: [2026-01-04, 2026-01-09]     # each customer's values as of these times
      rows:
        - {{customer_id: 1, ordered_at: 2026-01-04, count_7d: 2, amount_sum_7d: 40.0, amount_avg_30d: 20.0}}
        - {{customer_id: 1, ordered_at: 2026-01-09, count_7d: 1, amount_sum_7d: 30.0, amount_avg_30d: 20.0}}
""",
    "macros/sample_data.sql": """\
{{% macro create_sample_orders() %}}
create schema if not exists raw;
create table if not exists raw.orders as
select
    range + 1 as order_id,
    1 + mod(range * 7919, 500) as customer_id,
    round(5 + mod(range * 104729, 20000) / 100.0, 2) as amount,
    timestamp '2026-01-01' + to_seconds(mod(range * 2654435761, 90 * 86400)) as ordered_at
from range({{{{ var('sample_orders') }}}});
{{% endmacro %}}
""",
    ".gitignore": "target/\n",
}


def new_project_folder(path: Path) -> Path:
    """The folder of a new project, created: its name must be a SQL identifier; an existing
    non-empty folder is refused (nothing in it is touched)."""
    name = path.name
    if not IDENTIFIER.match(name):
        raise ConfigError(f"project name {name!r} must be a SQL identifier (letters, digits, underscores)")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"folder {path} already exists and is not empty: choose another name")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def create_project(path: Path) -> Path:
    """Write a new project folder; refuses to touch an existing non-empty folder."""
    name = new_project_folder(path).name
    for relative, template in _FILES.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template.format(name=name), encoding="utf-8")
    return path.resolve()
