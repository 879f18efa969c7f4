# The schoolnet-monitor collector (`monitor run`), built by docker-compose.yml (service collector).
# docs/deploy.md explains the stack; tests/test_compose.py checks this file statically.
# Pinned exactly (Debian 12 "bookworm", like the servers the docs install on); raise deliberately.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ICMP as a non-root user. Raw ICMP sockets need CAP_NET_RAW, and a capability granted to a
# container (`cap_add: [NET_RAW]` in docker-compose.yml) reaches a non-root process only through a
# file capability on the program it executes. So the interpreter carries cap_net_raw: the collector
# (user 10001, no other privilege) can open its raw socket, nothing else in the image can do more
# than that. This is why the compose file must not set `no-new-privileges` (it disables file
# capabilities). Fallback: docker-compose.yml also sets net.ipv4.ping_group_range for the
# container, so if a runtime drops file capabilities the collector uses unprivileged ICMP datagram
# sockets instead (docs/icmp.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_raw+ep "$(readlink -f /usr/local/bin/python3)" \
    && getcap "$(readlink -f /usr/local/bin/python3)" | grep -q cap_net_raw \
    && apt-get purge -y libcap2-bin \
    && rm -rf /var/lib/apt/lists/*

# Only what `pip install .` needs (.dockerignore keeps everything else out of the build context).
# constraints.txt pins pysnmp and pyasn1, whose internals the SNMP fast path uses.
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE constraints.txt ./
COPY monitor ./monitor
# served at /runbooks; setup.py puts it into the package
COPY docs/runbooks.md ./docs/runbooks.md
RUN pip install -c constraints.txt . \
    && rm -rf /src

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin schoolnet
USER 10001:10001
WORKDIR /

# /metrics, /-/healthy, /-/reload, /runbooks and the status page. targets.yaml is mounted, not
# baked in: the collector re-reads it when it changes. docker-compose.yml appends
# `--web.config.file` (TLS and basic auth) as the service's command.
EXPOSE 9430
ENTRYPOINT ["monitor", "run", "--config", "/etc/schoolnet/targets.yaml", "--listen", "0.0.0.0:9430"]
