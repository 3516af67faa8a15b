// A worker in a process of its own, for tests that kill it with SIGKILL
// (tests/worker-heartbeat.test.ts): `node tests/helpers/worker-process.ts <ownerUrl>`.
// Prints "worker ready" once its runner is up.
import { makeLogger } from '../../src/logger.ts';
import { startWorker } from '../../src/worker/runner.ts';

await startWorker({ connectionString: process.argv[2], logger: makeLogger('silent'), cron: false, concurrency: 1 });
console.log('worker ready');
