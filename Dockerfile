# auditor's container image: the `auditor` command on a Debian slim base with the Pango libraries WeasyPrint
# needs for the PDF. It runs as a non-root user; the state, the reports and the local archive are volumes.
#
#   docker build -t auditor .
#   docker run --rm -v "$PWD/config.yaml:/etc/auditor/config.yaml:ro" \
#     -v auditor-state:/var/lib/auditor/state -v auditor-reports:/var/lib/auditor/reports \
#     -v auditor-archive:/var/lib/auditor/archive auditor run --suite weekly --deliver
#
# The config names the volumes' folders as absolute paths (see docs/scheduling.md, "The container image"):
#   state_dir: /var/lib/auditor/state, output_dir: /var/lib/auditor/reports, archive: {dir: /var/lib/auditor/archive}
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint draws text with Pango; harfbuzz-subset makes its font subsetting fast; DejaVu is a font to draw with.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /tmp/auditor-src
COPY pyproject.toml README.md ./
COPY auditor ./auditor
COPY templates ./templates
RUN pip install . && cd / && rm -rf /tmp/auditor-src

RUN groupadd --system --gid 10001 auditor \
 && useradd --system --uid 10001 --gid auditor --home-dir /var/lib/auditor --shell /usr/sbin/nologin auditor \
 && mkdir -p /etc/auditor /var/lib/auditor/state /var/lib/auditor/reports /var/lib/auditor/archive \
 && chown -R auditor:auditor /var/lib/auditor

USER 10001:10001
WORKDIR /var/lib/auditor
VOLUME ["/var/lib/auditor/state", "/var/lib/auditor/reports", "/var/lib/auditor/archive"]

# For the daemon (`schedule`): unhealthy when a run is overdue or the daemon stopped ticking. A one-shot
# `run` container ends before the first check.
HEALTHCHECK --interval=5m --timeout=30s --start-period=2m \
  CMD ["auditor", "schedule", "--config", "/etc/auditor/config.yaml", "--health"]

ENTRYPOINT ["auditor"]
CMD ["schedule", "--config", "/etc/auditor/config.yaml"]
