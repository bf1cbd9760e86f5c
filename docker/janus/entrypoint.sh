#!/bin/sh
# Writes Janus's configuration from the JANUS_* variables (office/janus.py, JanusConfig.from_environ)
# and replaces itself with Janus: logs to stdout, no colours, signals reach Janus directly.
set -eu
config_dir="${JANUS_CONFIG_DIR:-/tmp/janus}"
python3 -m office.janus --write-config "$config_dir" >/dev/null
exec janus -C "$config_dir/janus.jcfg" -F "$config_dir" -o "$@"
