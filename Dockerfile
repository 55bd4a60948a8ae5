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

# Stage 2: the image.
FROM node:20-bookworm-slim

# iputils-ping: the Ping worker runs the system `ping`.
# libcap2-bin: setcap, so the non-root `node` user can send ICMP echo (the container still needs NET_RAW in its
#   bounding set: Docker's default set has it, and compose adds it explicitly for ping-worker).
# tini: PID 1 that forwards signals and reaps orphaned processes (e.g. the ping children of a worker that died).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iputils-ping libcap2-bin tini \
 && setcap cap_net_raw+ep /bin/ping \
 && getcap /bin/ping | grep -q cap_net_raw \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN chown node:node /app
USER node

# devDependencies are kept: the build (esbuild), the dead-letter CLI and the benchmark use them.
COPY --from=manifests --chown=node:node /manifests/ ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY --chown=node:node . .
# Compile every package to dist/ (scripts/build.mjs): the services run as plain JavaScript.
RUN npm run build
# RESOURCE_DATA_DIR's default (./data/resources). A named volume mounted here is seeded with this directory's
# ownership, so the non-root user can write to it.
RUN mkdir -p data/resources

EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "scripts/start.mjs"]
