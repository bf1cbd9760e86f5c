#!/usr/bin/env bash
# Installs the Debian packages the tests drive (headless Chromium; espeak-ng makes test speech; Mosquitto
# checks the password file and ACL the deployment generates; Caddy and coturn run docker/Caddyfile and
# docker/turnserver.conf in `make prod-check`; Janus is the SFU that meeting rooms switch to from a
# configurable head count, driven for real by tests/test_sfu.py), only when missing.
set -euo pipefail
needed=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || needed+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || needed+=(espeak-ng)
[ -x /usr/sbin/mosquitto ] || needed+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || needed+=(mosquitto-clients)
command -v caddy >/dev/null 2>&1 || needed+=(caddy)
command -v turnserver >/dev/null 2>&1 || needed+=(coturn)
command -v janus >/dev/null 2>&1 || [ -x /usr/bin/janus ] || needed+=(janus)
[ ${#needed[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${needed[*]}. Install them as root: apt-get install -y ${needed[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${needed[@]}" fonts-dejavu-core >/dev/null
echo "installed: ${needed[*]}"
