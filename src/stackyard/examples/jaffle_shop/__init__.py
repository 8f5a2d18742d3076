"""The Jaffle Shop: a café chain selling toasted sandwiches (jaffles) and drinks.

``generator`` writes a year of the shop's data as an application database (SQLite:
customers, orders, order items) and back-office file exports (products and stores as CSV,
supplies as Parquet): ``catalogue`` holds what the shop sells and where, ``simulation`` draws
its customers and orders. ``transform/`` is the dbt project that turns the loaded data into
staging views, marts tables and reporting views.
"""
