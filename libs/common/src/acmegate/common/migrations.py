"""Schema migrations, applied idempotently and safely when several replicas start at once.

Each service owns one schema and ships numbered SQL files (``0001_<name>.sql``…) in its own
package. :func:`migrate` takes a transaction-level advisory lock, so concurrent starters queue up
and the later ones find nothing to do; each file runs in that transaction with its version row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One lock for every schema: migrations of different services may reference each other's
# types in the future, and serialising them costs nothing at start-up.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"acmegate.migrations").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class SchemaMigrations:
    """The migrations of one schema, read from a package's ``migrations`` folder."""

    schema: str
    migrations: tuple[Migration, ...]

    @classmethod
    def from_folder(cls, schema: str, folder: Traversable) -> SchemaMigrations:
        found: list[Migration] = []
        for entry in folder.iterdir():
            match = _FILE.match(entry.name)
            if match:
                found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
        found.sort(key=lambda m: m.version)
        versions = [m.version for m in found]
        if versions != list(range(1, len(found) + 1)):
            raise ValueError(f"migrations of {schema} are not numbered 1..n: {versions}")
        return cls(schema, tuple(found))


async def migrate(connection: asyncpg.Connection, *schemas: SchemaMigrations) -> list[str]:
    """Apply what is missing of each schema; returns the names of the files applied."""
    applied: list[str] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS public.acmegate_migrations (
                schema_name text NOT NULL,
                version integer NOT NULL,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (schema_name, version)
            )
            """
        )
        for schema in schemas:
            done = {
                row["version"]
                for row in await connection.fetch(
                    "SELECT version FROM public.acmegate_migrations WHERE schema_name = $1",
                    schema.schema,
                )
            }
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema.schema}"')
            for migration in schema.migrations:
                if migration.version in done:
                    continue
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO public.acmegate_migrations (schema_name, version, name) "
                    "VALUES ($1, $2, $3)",
                    schema.schema,
                    migration.version,
                    migration.name,
                )
                applied.append(f"{schema.schema}/{migration.name}")
                log.info("migration applied", schema=schema.schema, migration=migration.name)
    return applied
