# pulser as a container: mount the GitOps repository at /gitops and the Docker socket of the host.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pulser
COPY package.json package-lock.json ./
# The dependencies get a layer of their own, kept while only the sources change: `prepare` (the
# build) is skipped here, the dependencies' own install scripts run through `npm rebuild`.
RUN npm ci --omit=dev --ignore-scripts && npm rebuild && npm cache clean --force
COPY bin ./bin
COPY scripts/build.mjs ./scripts/build.mjs
# src/ stays next to dist/: data files (schema, web pages, the stand-in's sources) are read from it.
COPY src ./src
COPY reconcilers ./reconcilers
COPY schema ./schema
RUN node scripts/build.mjs
ENV NODE_ENV=production PULSER_DIR=/gitops PULSER_LISTEN=0.0.0.0:9470
EXPOSE 9470
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:9470/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=2", "/opt/pulser/bin/pulser.js"]
CMD ["reconcile", "--watch"]
