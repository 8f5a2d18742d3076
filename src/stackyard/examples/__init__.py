"""Example projects ``stackyard init --example NAME`` creates: data generators and dbt templates.

Each example is a package holding a ``generator`` module (deterministic sample data written
into the new project's ``sources/`` folder) and a ``transform/`` folder (the dbt project,
copied verbatim into the new project).
"""
