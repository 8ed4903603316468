#!/usr/bin/env bash
# Make sure the local PostgreSQL (127.0.0.1:5432) answers; start its cluster if it is installed but down.
set -u
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
ready && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
  for _ in $(seq 1 20); do ready && exit 0; sleep 0.5; done
fi
exit 1
