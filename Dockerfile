# pgwallet image: the API (default command), the worker
# (`node src/worker/main.ts`), migrations and the Revio sandbox all run from it
# (docker-compose.yml picks the command). Node 24 runs the TypeScript sources
# directly (type stripping), so there is no build step: one stage installs
# production dependencies, the final stage copies them with the sources (owned
# by root, so the app cannot rewrite its own code) and runs as the
# unprivileged `node` user. Configuration comes only from the environment.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json .gmrc ./
COPY src ./src
COPY sql ./sql
COPY migrations ./migrations
USER node
# 4000: the API; 9464: /metrics with METRICS_PORT (API) or WORKER_METRICS_PORT (worker).
EXPOSE 4000 9464
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "src/main.ts"]
