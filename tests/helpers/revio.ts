// Test helpers for the Revio client and sandbox: a real HTTP webhook receiver
// that records raw bodies and signatures, and factories with fast settings.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRevioClient, type RevioClient, type RevioClientOptions } from '../../src/revio/index.ts';
import { startRevioSandbox, type RevioSandbox, type RevioSandboxOptions } from '../../src/revio-sandbox/index.ts';

let sharedKey: string | undefined;
/** One 2048-bit key per test file (generating 3072-bit keys per sandbox would be slow). */
export function testPrivateKeyPem(): string {
  sharedKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return sharedKey;
}

/** Retry gaps of 3 ms, 9 ms, 27 ms … and a 36 h window of 13 s. */
export const FAST = 0.0001;

export function startTestSandbox(options: RevioSandboxOptions = {}): Promise<RevioSandbox> {
  return startRevioSandbox({ privateKeyPem: testPrivateKeyPem(), timeScale: FAST, deliveryTimeoutMs: 2_000, ...options });
}

export function clientFor(sandbox: RevioSandbox, options: Partial<RevioClientOptions> = {}): RevioClient {
  return createRevioClient({ baseUrl: sandbox.apiUrl, apiKey: sandbox.apiKey, brandId: sandbox.brandId, timeoutMs: 2_000, ...options });
}

export interface Received {
  /** 1-based arrival number. */
  n: number;
  at: number;
  path: string;
  raw: Buffer;
  signature: string | undefined;
  body: { id: string; event_type: string; status: string; [key: string]: unknown };
  /** The status the receiver answered. */
  answered: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Decides the status of each arrival; default 200. */
  respond: (arrival: Omit<Received, 'answered'>) => number;
  /** Resolves once `predicate(received)` holds (polls every 5 ms). */
  waitFor(predicate: (received: Received[]) => boolean, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: '',
    received,
    respond: () => 200,
    async waitFor(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) {
          throw new Error(`receiver: condition not met within ${timeoutMs} ms; got ${JSON.stringify(received.map((r) => `${r.body.event_type}→${r.answered}`))}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return received;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const arrival = {
      n: received.length + 1,
      at: Date.now(),
      path: req.url ?? '',
      raw,
      signature: req.headers['x-signature'] as string | undefined,
      body: JSON.parse(raw.toString('utf8')),
    };
    const answered = receiver.respond(arrival);
    received.push({ ...arrival, answered });
    res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered < 300 ? 'ok' : 'not now');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** `event_type` of each arrival, for compact assertions. */
export const events = (received: Received[]) => received.map((r) => r.body.event_type);
