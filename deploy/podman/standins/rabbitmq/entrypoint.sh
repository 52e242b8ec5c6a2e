#!/usr/bin/env bash
# Entrypoint of the RabbitMQ stand-in: writes rabbitmq.conf from the official image's variables
# (unless a configuration is mounted), then runs the broker as the rabbitmq user.
set -euo pipefail
if [ "$1" != rabbitmq-server ]; then exec "$@"; fi

conf=/etc/rabbitmq/rabbitmq.conf
if [ ! -s "$conf" ] || grep -q '^# acmegate stand-in' "$conf"; then
  {
    echo '# acmegate stand-in: written from the environment at start'
    echo 'loopback_users.guest = false'
    echo "listeners.tcp.default = ${RABBITMQ_NODE_PORT:-5672}"
    echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
    echo "default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}"
  } >"$conf"
fi
mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
exec setpriv --reuid rabbitmq --regid rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
