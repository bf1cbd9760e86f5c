# The SFU for rooms of five or more (docs/adr/0023): Debian's Janus 1.1.2 with only the videoroom plugin
# and the HTTP transport, configured at start from JANUS_* variables by office/janus.py, the same code
# that writes the embedded Janus's files for `make run` (one source for every config value).
# Build from the repository root: docker build -f docker/janus.Dockerfile -t office-janus .
# Not built in CI here (no Docker engine); tests/test_deploy_files.py and `make check-deploy` check it.
#
#   JANUS_ADMIN_SECRET      required: Office's OFFICE_SFU_ADMIN_SECRET (admin API and videoroom admin_key)
#   JANUS_NAT_1_1_MAPPING   the public IP the browsers reach the media ports on (empty: the container's)
#   JANUS_RTP_PORT_RANGE    media UDP ports, 20000-20199 by default; publish exactly this range
#   JANUS_HTTP_PORT (8088; the healthcheck probes 8088), JANUS_ADMIN_PORT (7088), JANUS_DEBUG_LEVEL (4)
FROM debian:bookworm-slim

# python3 (the standard library; python3-minimal lacks dataclasses and http) runs office/janus.py's
# config writer and the healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends janus python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin janus

# office/janus.py alone, in an empty package: the real office/__init__.py loads Celery and Django.
COPY office/janus.py /opt/office/office/janus.py
COPY docker/janus/entrypoint.sh /usr/local/bin/janus-entrypoint
RUN touch /opt/office/office/__init__.py

ENV PYTHONPATH=/opt/office PYTHONDONTWRITEBYTECODE=1 JANUS_CONFIG_DIR=/tmp/janus

# The config (with the admin secret) is written to /tmp at every start: no secret in the image, and
# the root filesystem can stay read-only.
USER 10002
EXPOSE 8088/tcp 7088/tcp 20000-20199/udp
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=4 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8088/janus/info', timeout=4)"]
ENTRYPOINT ["/usr/local/bin/janus-entrypoint"]
