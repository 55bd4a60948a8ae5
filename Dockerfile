# One image for every service of the suite. The default command runs all of them under the supervisor
# (scripts/start.mjs, the root `start` script); docker-compose.yml runs one service per container by overriding
# `command` with the matching `start:<name>` script's argv.
#
# The image carries production dependencies only (`npm ci --omit=dev`: no typescript, vitest, testcontainers,
# tsx, esbuild, dependency-cruiser) with better-sqlite3's native addon compiled in the deps stage, the compiled
# JavaScript (each package's dist/), the Ping worker's compiled ICMP addon, and the offline demo's RDAP/DNS fixture
# bundled into one file (tests/fixtures/dist/serve.mjs; docker-compose.yml's `fixtures` service, profile `demo`).
#
# NODE_VERSION is the one place the Node version is chosen, for every stage (the build compiles the addon against
# that Node's headers): `docker compose build --build-arg NODE_VERSION=22`, or NODE_VERSION in .env.
ARG NODE_VERSION=20

# Stage 1: just the npm manifests (root + every workspace), so the `npm ci` layers below are rebuilt only when a
# package.json or the lockfile changes, and new workspaces are picked up without editing this file.
FROM node:${NODE_VERSION}-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN mkdir -p /manifests \
 && cp package.json package-lock.json /manifests/ \
 && if [ -f .npmrc ]; then cp .npmrc /manifests/; fi \
 && for f in libs/*/package.json services/*/package.json services/workers/*/package.json; do \
      if [ -f "$f" ]; then mkdir -p "/manifests/${f%/package.json}" && cp "$f" "/manifests/$f"; fi; \
    done

# Stage 2: a C/C++ toolchain for native code: the Ping worker's ICMP addon (plain C, compiled by `npm run build`
# with $CC against /usr/local/include/node) and the dependencies with a native part: better-sqlite3 (the SQLite
# resource worker; its install script tries a prebuilt binary, then compiles SQLite and the addon with node-gyp:
# python3, make, g++, against this Node's headers). Compilers never reach the image: it only copies files out of
# these stages.
FROM node:${NODE_VERSION}-bookworm-slim AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make python3 libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV CC=gcc
WORKDIR /app
RUN chown node:node /app
USER node

# Stage 3: every dependency (devDependencies too: esbuild compiles), then the build.
FROM toolchain AS build
COPY --from=manifests --chown=node:node /manifests/ ./
RUN npm ci --no-audit --no-fund && npm cache clean --force
COPY --chown=node:node . .
# Compile every package to dist/ (scripts/build.mjs): the services run as plain JavaScript. The build only warns
# when the addon does not compile (the worker would fall back to the system ping); here that fails the image.
RUN npm run build \
 && if [ ! -f services/workers/ping/dist/native/icmp.node ]; then echo "the Ping worker's ICMP addon did not compile" >&2; exit 1; fi
# The demo profile's RDAP and DNS fixture (`npm run fixtures` runs it through tsx, a devDependency): one
# self-contained ES module, dns-packet included, so the production image runs it with plain node.
RUN npx esbuild tests/fixtures/serve.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
      --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
      --outfile=tests/fixtures/dist/serve.mjs
# What the image takes from this stage, under /runtime: the root package.json (the start scripts) and scripts/
# (the supervisor, the healthcheck), each workspace's package.json and dist/, and the fixture bundle.
RUN mkdir -p /tmp/runtime/tests/fixtures /tmp/runtime/data/resources \
 && cp -R package.json scripts /tmp/runtime/ \
 && cp -R tests/fixtures/dist /tmp/runtime/tests/fixtures/ \
 && for d in libs/* services/* services/workers/*; do \
      if [ -f "$d/package.json" ] && [ -d "$d/dist" ]; then mkdir -p "/tmp/runtime/$d" && cp -R "$d/package.json" "$d/dist" "/tmp/runtime/$d/"; fi; \
    done

# Stage 4: production dependencies only, installed (not pruned) from the lockfile, install scripts run (the root
# package.json's allowScripts approves better-sqlite3's). Native ones compile here, against the same Node and libc
# as the image; the runtime stage copies this node_modules, better-sqlite3's build/Release/*.node included.
FROM toolchain AS deps
COPY --from=manifests --chown=node:node /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 5: the image.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime

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

# Production node_modules (with the workspace links) and the manifests, then the built files over them. data/resources
# is RESOURCE_DATA_DIR's default: a named volume mounted there is seeded with its ownership, so `node` can write.
COPY --from=deps --chown=node:node /app/ ./
COPY --from=build --chown=node:node /tmp/runtime/ ./

# Inside a container the API must listen on every interface to be reachable through a published port; the
# suite's own default (127.0.0.1) is for a developer's machine.
ENV API_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "scripts/start.mjs"]
