"""SQLite bulk loading for large imports: the example table's secondary indexes are dropped before
the rows go in and built again after them, inside the import's transaction.

Inserting 100k rows into a table with seven secondary indexes updates every index row by row, and
the content-hash index in random order: that cost more than the rows themselves. Building an index
over rows already in the table sorts once instead. SQLite's schema changes are transactional, so the
import stays atomic: an error anywhere rolls the drop back with the rows, and a reader (WAL mode)
sees the old schema and rows until the commit. The unique (project, external id) index is part of
the table definition and stays, so uniqueness is enforced as the rows arrive. Partial indexes stay
too: they cover columns an import leaves NULL (priority, test set, audit), so new rows never enter them.

Only on SQLite (PostgreSQL would lock readers out of the table while its indexes are rebuilt), only
for imports of at least BULK_MIN_ROWS rows, and only when the table holds fewer rows than the import
brings (rebuilding over a much larger table would cost more than it saves).
"""

from __future__ import annotations

from typing import Any

BULK_MIN_ROWS = 20_000


def drop_example_indexes(connection: Any, rows_coming: int) -> list[str]:
    """Drop the example table's secondary indexes when a bulk load of `rows_coming` rows is worth it;
    returns their CREATE INDEX statements for `rebuild_indexes` ([] when nothing was dropped)."""
    if connection.dialect.name != "sqlite" or rows_coming < BULK_MIN_ROWS:
        return []
    if connection.exec_driver_sql("SELECT count(*) FROM example").scalar_one() > rows_coming:
        return []
    indexes = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'example' AND sql IS NOT NULL "
        "ORDER BY name").all()
    indexes = [(name, sql) for name, sql in indexes if " WHERE " not in sql.upper()]
    for name, _ in indexes:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in indexes]


def rebuild_indexes(connection: Any, statements: list[str]) -> None:
    """Create the indexes `drop_example_indexes` dropped, as they were."""
    for statement in statements:
        connection.exec_driver_sql(statement)
