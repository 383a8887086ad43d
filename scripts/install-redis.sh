#!/usr/bin/env bash
# Redis for the Celery test (tests/test_celery.py starts its own server on a free port): Debian's
# redis-server package, installed when no redis-server is on PATH. Needs root or sudo, as CI has.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing redis-server (Debian package) for the Celery test"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null || { echo "redis-server is still not on PATH" >&2; exit 1; }
