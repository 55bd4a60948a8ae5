# One image for every service of the suite. The default command runs all of them under the supervisor
# (scripts/start.mjs, the root `start` script); docker-compose.yml runs one service per container by overriding
# `command` with the matching `start:<name>` script's argv.

# Stage 1: just the npm manifests (root + every workspace), so the `npm ci` layer below is rebuilt only when a
# package.json or the lockfile changes, and new workspaces are picked up without editing this file.
FROM node:20-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN mkdir -p /manifests \
 && cp package.json package-lock.json /manifests/ \
 && if [ -f .npmrc ]; then cp .npmrc /manifests/; fi \
 && for f in libs/*/package.json services/*/package.json services/workers/*/package.json; do \
      if [ -f "$f" ]; then mkdir -p "/manifests/${f%/package.json}" && cp "$f" "/manifests/$f"; fi; \
    done

# Stage 2: dependencies, the compiled JavaScript and the Ping worker's ICMP socket addon (plain C, compiled by
# `npm run build` with cc against /usr/local/include/node). The compiler stays in this stage; the final image only
# gets /app.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV CC=gcc
WORKDIR /app
RUN chown node:node /app
USER node

# devDependencies are kept: the build (esbuild), the dead-letter CLI and the benchmark use them.
COPY --from=manifests --chown=node:node /manifests/ ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY --chown=node:node . .
# Compile every package to dist/ (scripts/build.mjs): the services run as plain JavaScript. The build only warns
# when the addon does not compile (the worker would fall back to the system ping); here that fails the image.
RUN npm run build \
 && if [ ! -f services/workers/ping/dist/native/icmp.node ]; then echo "the Ping worker's ICMP addon did not compile" >&2; exit 1; fi
# RESOURCE_DATA_DIR's default (./data/resources). A named volume mounted here is seeded with this directory's
# ownership, so the non-root user can write to it.
RUN mkdir -p data/resources

# Stage 3: the image.
FROM node:20-bookworm-slim

# iputils-ping: the Ping worker's fallback when its in-process ICMP socket cannot open (PING_ENGINE=auto).
# libcap2-bin: setcap, so the non-root `node` user can send ICMP echo with /bin/ping (the container still needs
#   NET_RAW in its bounding set: Docker's default set has it, and compose adds it explicitly for ping-worker).
#   The in-process socket needs neither: compose puts the container's groups in net.ipv4.ping_group_range.
# tini: PID 1 that forwards signals and reaps orphaned processes (e.g. the ping children of a worker that died).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iputils-ping libcap2-bin tini \
 && setcap cap_net_raw+ep /bin/ping \
 && getcap /bin/ping | grep -q cap_net_raw \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN chown node:node /app
USER node

# node_modules, every package's dist/ (with services/workers/ping/dist/native/icmp.node) and data/resources.
COPY --from=build --chown=node:node /app/ ./

EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "scripts/start.mjs"]
