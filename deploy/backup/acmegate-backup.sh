#!/usr/bin/env bash
# Back up an acmegate gateway: its PostgreSQL database and its files (configuration, CA
# certificates and encrypted keys, secret files). docs/operations.md, "Backup and restore".
#
#   acmegate-backup.sh DATABASE_URL OUT_DIR PATH...
#
# DATABASE_URL  the gateway's database (credentials from ~/.pgpass or PGPASSWORD, as for psql)
# OUT_DIR       created; receives acmegate.dump (pg_dump custom format), files.tar and SHA256SUMS
# PATH...       files and folders to keep, e.g. /etc/acmegate (config, CA folder, secrets)
#
# The dump is consistent by itself (pg_dump reads one snapshot) and may be taken while the
# gateway runs. CA keys are kept as they are on disk: encrypted PKCS#8, whose passphrases live
# elsewhere (a secret store), never in the backup. Keys inside an HSM are not files: back the
# token up with the HSM's own tools.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
database_url=$1
out=$2
shift 2

mkdir -p "$out"
chmod 700 "$out"
pg_dump --format=custom --no-owner --no-privileges --file="$out/acmegate.dump" "$database_url"
# Stored relative to / (etc/acmegate/...), restored below any root.
relative=()
for path in "$@"; do
  absolute=$(realpath -e -- "$path")
  relative+=("${absolute#/}")
done
tar --create --file="$out/files.tar" --directory=/ -- "${relative[@]}"
(cd "$out" && sha256sum acmegate.dump files.tar > SHA256SUMS)
pg_restore --list "$out/acmegate.dump" > /dev/null  # the dump is readable
echo "backed up to $out: $(du -sh "$out" | cut -f1)"
