"""A small but complete project (SQLite app database, CSV files, a dbt project) for run tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import write

SOURCES_YML = """
version: 2
sources:
  - name: dlt_app
    schema: app
    loaded_at_field: _loaded_at
    freshness:
      warn_after: {count: 24, period: hour}
      error_after: {count: 48, period: hour}
    tables:
      - name: customers
      - name: orders
  - name: dlt_files
    schema: files
    loaded_at_field: _loaded_at
    freshness:
      warn_after: {count: 24, period: hour}
      error_after: {count: 48, period: hour}
    tables:
      - name: products
"""


def make_project(root: Path, *, customers: int = 50, orders: int = 200) -> Path:
    """Write the project; returns its folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sources" / "files").mkdir(parents=True)
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at DATETIME)")
    db.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount INTEGER, "
        "status TEXT, updated_at DATETIME)"
    )
    db.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i, f"customer {i}", "2026-01-01 10:00:00") for i in range(1, customers + 1)],
    )
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (
                i,
                1 + i % customers,
                100 + i,
                "completed" if i % 3 else "placed",
                "2026-01-02 10:00:00",
            )
            for i in range(1, orders + 1)
        ],
    )
    db.commit()
    db.close()
    write(root / "sources" / "files" / "products.csv", "sku,name,price\nA,alpha,100\nB,beta,250\n")
    write(
        root / "stackyard.yml",
        """
        name: mini
        targets:
          dev: {type: duckdb}
        sources:
          app:
            kind: sql_database
            connection: sqlite:///sources/app.sqlite
            tables:
              customers: {primary_key: id, cursor: updated_at}
              orders: {primary_key: id, cursor: updated_at}
          files:
            kind: filesystem
            url: sources/files
            tables:
              products: {glob: "*.csv", primary_key: sku}
        """,
    )
    t = root / "transform"
    write(
        t / "dbt_project.yml",
        """
        name: mini
        version: "1.0.0"
        profile: stackyard
        models:
          mini:
            staging: {+materialized: view, +schema: staging}
            marts: {+materialized: table, +schema: marts}
        """,
    )
    write(
        t / "macros" / "generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}"
        "{%- if custom_schema_name is none -%}{{ target.schema }}"
        "{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}{%- endmacro %}\n",
    )
    write(t / "models" / "staging" / "dlt" / "_sources.yml", SOURCES_YML)
    write(
        t / "models" / "staging" / "dlt" / "stg_dlt__customers.sql",
        "select id as customer_id, name, _loaded_at from {{ source('dlt_app', 'customers') }}\n",
    )
    write(
        t / "models" / "staging" / "dlt" / "stg_dlt__orders.sql",
        "select id as order_id, customer_id, amount, status "
        "from {{ source('dlt_app', 'orders') }}\n",
    )
    write(
        t / "models" / "staging" / "dlt" / "stg_dlt__products.sql",
        "select sku, name, cast(price as integer) as price "
        "from {{ source('dlt_files', 'products') }}\n",
    )
    write(
        t / "models" / "staging" / "dlt" / "_models.yml",
        """
        version: 2
        models:
          - name: stg_dlt__customers
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
          - name: stg_dlt__orders
            columns:
              - name: order_id
                data_tests: [unique, not_null]
              - name: customer_id
                data_tests:
                  - relationships:
                      arguments: {to: ref('stg_dlt__customers'), field: customer_id}
              - name: status
                data_tests:
                  - accepted_values:
                      arguments: {values: [placed, completed]}
          - name: stg_dlt__products
            columns:
              - name: sku
                data_tests: [unique, not_null]
        """,
    )
    write(
        t / "models" / "marts" / "customer_orders.sql",
        "select c.customer_id, count(o.order_id) as orders, sum(o.amount) as amount "
        "from {{ ref('stg_dlt__customers') }} c left join {{ ref('stg_dlt__orders') }} o "
        "using (customer_id) group by 1\n",
    )
    return root


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "mini")
