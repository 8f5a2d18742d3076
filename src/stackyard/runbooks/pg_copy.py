"""A Postgres backup without pg_dump: the catalog as DDL and every table through binary COPY.

Used when pg_dump is not installed, or is older than the server (pg_dump refuses newer
servers). It carries what a stackyard warehouse holds — schemas, tables (columns, defaults,
identity and generated columns), sequences and their positions, constraints, indexes and
views — read inside the backup's repeatable-read transaction, so the DDL, the rows and the
fingerprints are one instant. Objects it cannot carry (functions, triggers, user-defined types,
materialized views, partitioned, foreign, inheriting or unlogged tables, row security
policies) stop the backup by name, with the advice to install pg_dump: nothing is skipped
silently. Grants and ownership are left out as with ``pg_restore --no-acl --no-owner``; ``stackyard apply`` re-creates grants.

The folder holds ``catalog.json`` and one ``data/NNNN.copy`` file per table, in
PostgreSQL's binary COPY format
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4), which a server of the
same or a newer major version reads back exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError

CATALOG_FILE = "catalog.json"
_CHUNK = 1 << 20

# Every query runs with search_path = pg_catalog, so pg_get_*def and format_type qualify every
# name outside pg_catalog (pg_dump does the same).
_SCHEMAS = """
SELECT n.oid, n.nspname FROM pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname
"""

_UNSUPPORTED = """
SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.oid = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.oid = ANY(%(schemas)s)
  AND t.typtype IN ('b', 'd', 'e', 'r', 'm') AND t.typelem = 0
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
  WHERE n.oid = ANY(%(schemas)s) AND c.relkind = 'c'
UNION ALL
SELECT CASE c.relkind WHEN 'm' THEN 'materialized view ' WHEN 'p' THEN 'partitioned table '
  WHEN 'f' THEN 'foreign table ' ELSE 'partition ' END || n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.oid = ANY(%(schemas)s) AND (c.relkind IN ('m', 'p', 'f') OR c.relispartition)
UNION ALL
SELECT CASE WHEN c.relpersistence = 'u' THEN 'unlogged table ' ELSE 'inheriting table ' END
  || n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.oid = ANY(%(schemas)s) AND c.relkind = 'r' AND NOT c.relispartition
  AND (c.relpersistence = 'u' OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = ANY(%(schemas)s)
  AND NOT t.tgisinternal
UNION ALL
SELECT 'row security policy ' || p.polname || ' on ' || p.polrelid::regclass::text
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = ANY(%(schemas)s)
ORDER BY 1
"""

_TABLES = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.oid = ANY(%(schemas)s) AND c.relkind = 'r' AND NOT c.relispartition
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
  CASE WHEN a.atthasdef THEN pg_get_expr(d.adbin, d.adrelid) END, a.attidentity, a.attgenerated,
  CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END,
  pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

_CONSTRAINTS = """
SELECT quote_ident(conname), pg_get_constraintdef(oid), contype = 'f' FROM pg_constraint
WHERE conrelid = %(oid)s AND contype IN ('p', 'u', 'c', 'f', 'x') ORDER BY contype = 'f', conname
"""

_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %(oid)s
AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid
"""

_SEQUENCES = """
SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
  s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
  (SELECT quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname)
   FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
   JOIN pg_namespace tn ON tn.oid = tc.relnamespace
   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
   WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'a')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
WHERE n.oid = ANY(%(schemas)s) AND c.relkind = 'S'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
ORDER BY 1, 2
"""

_VIEWS = """
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid), c.reloptions FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.oid = ANY(%(schemas)s) AND c.relkind = 'v' ORDER BY c.oid
"""


def quote_ident(*parts: str) -> str:
    """Quoted, dot-joined identifiers.

    >>> quote_ident("raw", 'we"ird')
    '"raw"."we""ird"'
    """
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def read_catalog(cursor: Any, whole: bool = True) -> dict[str, Any]:
    """The DDL of everything in the non-system schemas, read through the backup's cursor.

    Args:
        cursor: a cursor inside a transaction.
        whole: refuse objects this copy cannot carry (``False`` when only some tables'
            columns are wanted).

    Raises:
        UsageError: the database holds objects this copy cannot carry (named in the message).
    """
    cursor.execute("SET LOCAL search_path = pg_catalog")
    cursor.execute(_SCHEMAS)
    schemas = cursor.fetchall()
    oids = [oid for oid, _ in schemas]
    cursor.execute(_UNSUPPORTED, {"schemas": oids})
    unsupported = [row[0] for row in cursor.fetchall()]
    if unsupported and whole:
        shown = ", ".join(unsupported[:8]) + (" …" if len(unsupported) > 8 else "")
        raise UsageError(
            f"the database holds {len(unsupported)} objects the built-in Postgres backup "
            f"cannot carry: {shown}",
            hint="install pg_dump (e.g. apt-get install postgresql-client, the server's major "
            "version or newer) and run `stackyard backup` again: it is used when on PATH",
        )
    tables = []
    cursor.execute(_TABLES, {"schemas": oids})
    for number, (oid, schema, table) in enumerate(cursor.fetchall()):
        tables.append({"schema": schema, "table": table, "file": f"data/{number:05d}.copy"})
        tables[-1].update(_table_parts(cursor, oid))
    cursor.execute(_SEQUENCES, {"schemas": oids})
    keys = ("schema", "name", "type", "start", "increment", "min", "max", "cache", "cycle")
    sequences = [
        dict(zip(keys, row[:9], strict=True)) | {"owned_by": row[9]} for row in cursor.fetchall()
    ]
    for sequence in sequences:
        sequence["position"] = _position(cursor, quote_ident(sequence["schema"], sequence["name"]))
    cursor.execute(
        "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n "
        "ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid"
    )
    extensions = [list(row) for row in cursor.fetchall()]
    cursor.execute(_VIEWS, {"schemas": oids})
    views = [
        {"schema": s, "name": v, "definition": d, "options": list(o or [])}
        for s, v, d, o in cursor.fetchall()
    ]
    cursor.execute("SET LOCAL search_path TO DEFAULT")
    return {
        "schemas": [name for _, name in schemas],
        "extensions": extensions,
        "tables": tables,
        "sequences": sequences,
        "views": views,
    }


def _table_parts(cursor: Any, oid: int) -> dict[str, Any]:
    cursor.execute(_COLUMNS, {"oid": oid})
    columns = []
    for name, type_, not_null, default, identity, generated, collation, serial in cursor.fetchall():
        columns.append(
            {
                "name": name,
                "type": type_,
                "not_null": not_null,
                "default": default,
                "identity": identity,
                "generated": generated,
                "collation": collation,
                # Identity sequences come back with their column; their position must too.
                "identity_position": _position(cursor, serial) if identity and serial else None,
            }
        )
    cursor.execute(_CONSTRAINTS, {"oid": oid})
    constraints = [{"name": n, "definition": d, "foreign": f} for n, d, f in cursor.fetchall()]
    cursor.execute(_INDEXES, {"oid": oid})
    return {
        "columns": columns,
        "constraints": constraints,
        "indexes": [row[0] for row in cursor.fetchall()],
    }


def _position(cursor: Any, sequence: str) -> list[Any]:
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    last, called = cursor.fetchone()
    return [int(last), bool(called)]


def copied_columns(table: dict[str, Any]) -> str:
    """The column list COPY reads and writes: every column but generated ones."""
    return ", ".join(quote_ident(c["name"]) for c in table["columns"] if not c["generated"])


def dump(cursor: Any, folder: Path) -> dict[str, Any]:
    """Write the catalog and every table's rows into ``folder``; return the catalog."""
    catalog = read_catalog(cursor)
    (folder / "data").mkdir(parents=True)
    for table in catalog["tables"]:
        name = quote_ident(table["schema"], table["table"])
        statement = f"COPY {name} ({copied_columns(table)}) TO STDOUT (FORMAT binary)"
        with (folder / table["file"]).open("wb") as out, cursor.copy(statement) as copy:
            for block in copy:
                out.write(block)
    (folder / CATALOG_FILE).write_text(json.dumps(catalog, indent=1) + "\n", encoding="utf-8")
    return catalog


def read_saved_catalog(folder: Path) -> dict[str, Any]:
    """The catalog of a built-in Postgres backup."""
    data: dict[str, Any] = json.loads((folder / CATALOG_FILE).read_text(encoding="utf-8"))
    return data


def create_table_sql(table: dict[str, Any], name: str) -> str:
    """``CREATE TABLE`` with the saved columns (constraints and indexes come after the rows).

    >>> create_table_sql({"columns": [{"name": "id", "type": "bigint", "not_null": True,
    ...     "default": None, "identity": "a", "generated": "", "collation": None}]}, '"t"')
    'CREATE TABLE "t" ("id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY)'
    """
    parts = []
    for column in table["columns"]:
        text = f"{quote_ident(column['name'])} {column['type']}"
        if column["collation"]:
            text += f" COLLATE {column['collation']}"
        if column["not_null"]:
            text += " NOT NULL"
        if column["generated"]:
            text += f" GENERATED ALWAYS AS ({column['default']}) STORED"
        elif column["identity"]:
            text += " GENERATED " + ("ALWAYS" if column["identity"] == "a" else "BY DEFAULT")
            text += " AS IDENTITY"
        elif column["default"] is not None:
            text += f" DEFAULT {column['default']}"
        parts.append(text)
    return f"CREATE TABLE {name} ({', '.join(parts)})"


def load_rows(cursor: Any, folder: Path, table: dict[str, Any], name: str) -> None:
    """COPY one table's saved rows into ``name``."""
    statement = f"COPY {name} ({copied_columns(table)}) FROM STDIN (FORMAT binary)"
    with (folder / table["file"]).open("rb") as source, cursor.copy(statement) as copy:
        while block := source.read(_CHUNK):
            copy.write(block)


def load(conn: Any, folder: Path) -> None:
    """Re-create everything a built-in backup holds in an empty database, in one transaction."""
    catalog = read_saved_catalog(folder)
    with conn.transaction(), conn.cursor() as cursor:
        for schema in catalog["schemas"]:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        for extension, schema in catalog["extensions"]:
            cursor.execute(
                f"CREATE EXTENSION IF NOT EXISTS {quote_ident(extension)} WITH SCHEMA {quote_ident(schema)}"
            )
        for seq in catalog["sequences"]:
            cursor.execute(
                f"CREATE SEQUENCE {quote_ident(seq['schema'], seq['name'])} AS {seq['type']} "
                f"INCREMENT BY {seq['increment']} MINVALUE {seq['min']} MAXVALUE {seq['max']} "
                f"START WITH {seq['start']} CACHE {seq['cache']}"
                + (" CYCLE" if seq["cycle"] else "")
            )
        for table in catalog["tables"]:
            name = quote_ident(table["schema"], table["table"])
            cursor.execute(create_table_sql(table, name))
            load_rows(cursor, folder, table, name)
        for table in catalog["tables"]:
            name = quote_ident(table["schema"], table["table"])
            for column in table["columns"]:
                if column["identity_position"]:
                    last, called = column["identity_position"]
                    cursor.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                        (name, column["name"], last, called),
                    )
        constraints = [(table, c) for table in catalog["tables"] for c in table["constraints"]]
        for table, constraint in sorted(constraints, key=lambda pair: pair[1]["foreign"]):
            cursor.execute(
                f"ALTER TABLE {quote_ident(table['schema'], table['table'])} "
                f"ADD CONSTRAINT {constraint['name']} {constraint['definition']}"
            )
        for table in catalog["tables"]:
            for index in table["indexes"]:
                cursor.execute(index)
        for seq in catalog["sequences"]:
            name = quote_ident(seq["schema"], seq["name"])
            last, called = seq["position"]
            cursor.execute("SELECT setval(%s, %s, %s)", (name, last, called))
            if seq["owned_by"]:
                cursor.execute(f"ALTER SEQUENCE {name} OWNED BY {seq['owned_by']}")
        _create_views(conn, cursor, catalog["views"])


def _create_views(conn: Any, cursor: Any, views: list[dict[str, Any]]) -> None:
    """Views in an order that works: one whose view is not there yet waits for the next pass.

    Raises:
        UsageError: a pass created none of the views left (the last error is shown).
    """
    import psycopg

    pending = list(views)
    while pending:
        waiting: list[dict[str, Any]] = []
        error = ""
        for view in pending:
            options = f" WITH ({', '.join(view['options'])})" if view["options"] else ""
            statement = (
                f"CREATE VIEW {quote_ident(view['schema'], view['name'])}{options} AS "
                f"{view['definition']}"
            )
            try:
                with conn.transaction():  # a savepoint: one failure keeps the rest
                    cursor.execute(statement)
            except psycopg.errors.UndefinedTable as exc:
                waiting.append(view)
                error = str(exc)
        if len(waiting) == len(pending):
            names = ", ".join(f"{v['schema']}.{v['name']}" for v in waiting)
            raise UsageError(
                f"cannot re-create the views {names}: {error}",
                hint=f"nothing was replaced; their definitions are in the backup's {CATALOG_FILE}",
            )
        pending = waiting
