#!/usr/bin/env bash
# Restore an acmegate backup made by acmegate-backup.sh. docs/operations.md, "Backup and restore".
#
#   acmegate-restore.sh BACKUP_DIR DATABASE_URL [FILES_ROOT]
#
# BACKUP_DIR    holds acmegate.dump, files.tar and SHA256SUMS
# DATABASE_URL  an EMPTY database (create it first); it is refused if it holds acmegate data
# FILES_ROOT    where the files go (default /): they come back under their original paths
#               below it, e.g. FILES_ROOT/etc/acmegate
#
# Stop every gateway process first and start them once this succeeded: `acmegate run` applies
# any newer migrations of its release at start.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
backup=$1
database_url=$2
root=${3:-/}

(cd "$backup" && sha256sum --check --quiet SHA256SUMS)
existing=$(psql "$database_url" -XAtc \
  "SELECT count(*) FROM information_schema.schemata WHERE schema_name IN ('acme', 'policy', 'pki')")
if [ "$existing" != "0" ]; then
  echo "acmegate-restore: $database_url already holds acmegate schemas; restore into an empty database" >&2
  exit 1
fi
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
  --dbname="$database_url" "$backup/acmegate.dump"
mkdir -p "$root"
tar --extract --file="$backup/files.tar" --directory="$root"
echo "restored the database and the files below $root"
