// Every Prometheus metric pgwallet exports, in one registry per process (the
// API and the in-process worker share it; a separately run worker has its own,
// src/worker/main.ts). docs/observability.md lists them with what they mean;
// ops/prometheus/alerts.yml and ops/grafana/dashboards/pgwallet.json use them
// (tests/metrics.test.ts checks both name only exported metrics).
//
// Label values are bounded: routes are patterns, not URLs; GraphQL operation
// names are capped (see graphql.ts); tasks, event types and outcomes come
// from fixed lists.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from 'pg';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  graphqlOperations: Counter<'operation' | 'type' | 'outcome'>;
  graphqlDuration: Histogram<'operation' | 'type'>;
  webhookDeliveries: Counter<'event_type' | 'outcome'>;
  jobs: Counter<'task' | 'outcome'>;
  jobDuration: Histogram<'task'>;
  /** Pools whose usage is exported as pgwallet_db_pool_* (by name). */
  pools: Map<string, Pool>;
  addPool(name: string, pool: Pool): void;
}

export interface MetricsOptions {
  /** Node.js process metrics (process_*, nodejs_*); default true. */
  defaultMetrics?: boolean;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const pools = new Map<string, Pool>();

  const poolGauge = (name: string, help: string, read: (pool: Pool) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, p] of pools) this.set({ pool }, read(p));
      },
    });
  poolGauge('pgwallet_db_pool_clients', 'Connections open in the pool (busy and idle).', (p) => p.totalCount);
  poolGauge('pgwallet_db_pool_idle_clients', 'Open connections not checked out.', (p) => p.idleCount);
  poolGauge('pgwallet_db_pool_waiting_requests', 'Queries waiting for a connection (the pool is exhausted while > 0).', (p) => p.waitingCount);
  poolGauge('pgwallet_db_pool_max_clients', 'The pool size limit.', (p) => p.options.max ?? 10);

  return {
    registry,
    pools,
    addPool(name, pool) {
      pools.set(name, pool);
    },
    httpDuration: new Histogram({
      name: 'pgwallet_http_request_duration_seconds',
      help: 'HTTP requests by route pattern and status code, with their duration.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    graphqlOperations: new Counter({
      name: 'pgwallet_graphql_operations_total',
      help: 'GraphQL operations by name, type and outcome (success, error: executed with errors, rejected: not executed).',
      labelNames: ['operation', 'type', 'outcome'],
      registers,
    }),
    graphqlDuration: new Histogram({
      name: 'pgwallet_graphql_operation_duration_seconds',
      help: 'Execution time of GraphQL operations that ran, by name and type.',
      labelNames: ['operation', 'type'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'pgwallet_webhook_deliveries_total',
      help: 'Revio webhook deliveries by event type and outcome (applied, duplicate, ignored, unmatched, review, invalid, bad_signature, too_large, error).',
      labelNames: ['event_type', 'outcome'],
      registers,
    }),
    jobs: new Counter({
      name: 'pgwallet_jobs_total',
      help: 'graphile-worker job attempts by task and outcome (success, retry: failed and will run again, failed: out of attempts).',
      labelNames: ['task', 'outcome'],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'pgwallet_job_duration_seconds',
      help: 'Run time of job attempts by task.',
      labelNames: ['task'],
      buckets: JOB_BUCKETS,
      registers,
    }),
  };
}
