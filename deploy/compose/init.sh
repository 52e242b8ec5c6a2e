#!/bin/sh
# The one-time step before `docker compose up`, run as `docker compose --profile init run --rm init`:
# inside the acmegate image, as root, with this folder mounted at /compose. It creates what
# docker-compose.yml mounts and never overwrites anything that exists:
#
#   secrets/   random passwords and tokens, and the URLs built from them (one file each)
#   ca/        a new issuing CA (devices.pem, devices.key) under a new root (root.pem, root.key)
#
# The files acmegate reads belong to uid 10001, the image's user, with mode 0400 (keys and
# secrets) or 0444 (certificates); root.key is never mounted: move it offline.
# ACMEGATE_CA_COMMON_NAME, ACMEGATE_CA_ORGANIZATION and ACMEGATE_CA_KEY_TYPE shape the new CA.
set -eu
umask 077
dir=/compose
secrets="$dir/secrets"
ca="$dir/ca"
uid=10001
mkdir -p "$secrets"

random() { python -c 'import secrets; print(secrets.token_urlsafe(32))'; }
write() {  # write NAME VALUE: secrets/NAME, unless it exists
  if [ ! -s "$secrets/$1" ]; then printf '%s\n' "$2" >"$secrets/$1"; echo "init: wrote secrets/$1"; fi
}
for name in postgres-password rabbitmq-password admin-token radius-token ca-passphrase; do
  [ -s "$secrets/$name" ] || write "$name" "$(random)"
done
write database-url "postgresql://acmegate:$(cat "$secrets/postgres-password")@postgres:5432/acmegate"
write amqp-url "amqp://acmegate:$(cat "$secrets/rabbitmq-password")@rabbitmq:5672/"
# RabbitMQ reads its default user from a configuration file (its image ignores *_FILE variables).
write rabbitmq.conf "default_user = acmegate
default_pass = $(cat "$secrets/rabbitmq-password")"

if [ ! -s "$ca/devices.pem" ]; then
  ACMEGATE_CA_PASSPHRASE=$(cat "$secrets/ca-passphrase") acmegate ca init --out "$ca" \
    --name devices --common-name "${ACMEGATE_CA_COMMON_NAME:-acmegate devices CA}" \
    --subject "O=${ACMEGATE_CA_ORGANIZATION:-acmegate}" \
    --key-type "${ACMEGATE_CA_KEY_TYPE:-ec-p256}" >/dev/null
  echo "init: created a CA in ca/ (devices.pem, devices.key; root.pem, root.key)"
fi

# uid 10001 reads what acmegate mounts; the broker runs as its own user, so its configuration
# is world-readable inside a folder only root may enter.
chown "$uid:$uid" "$secrets"/* "$ca"/*
chmod 0400 "$secrets"/* "$ca"/*.key
chmod 0444 "$ca"/*.pem "$secrets/rabbitmq.conf"
chmod 0700 "$secrets"
chmod 0755 "$ca"
echo "init: done. Start the gateway with: docker compose up -d"
echo "init: the admin token is in deploy/compose/secrets/admin-token (readable by root)"
