// HTTP hygiene: health and readiness, request ids, security headers, body
// limits, error masking, and graceful shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { makePool } from '../src/db/pools.ts';
import { healthRoutes } from '../src/http/health.ts';
import { makeLogger } from '../src/logger.ts';
import { startTestApi, type TestApi } from './helpers/api.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

describe('/health and /ready', () => {
  it('/health answers without touching the database', async () => {
    const response = await fetch(`${api.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/ready confirms the database is reachable and fully migrated', async () => {
    const response = await fetch(`${api.url}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ready' });
  });

  it('/ready is 503 when the database cannot be reached', async () => {
    const deadPool = makePool('postgres://authenticator:x@127.0.0.1:1/none', 'dead', makeLogger('silent'));
    const server = express().use(healthRoutes(deadPool)).listen(0, '127.0.0.1');
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: 'not_ready', reason: 'database_unreachable' });
    } finally {
      server.close();
      await deadPool.end();
    }
  });
});

describe('requests', () => {
  it('carry a request id, reusing a sane incoming one', async () => {
    const fresh = await fetch(`${api.url}/health`);
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const reused = await fetch(`${api.url}/health`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(reused.headers.get('x-request-id')).toBe('trace-abc.123');
    const hostile = await fetch(`${api.url}/health`, { headers: { 'x-request-id': 'x'.repeat(200) } });
    expect(hostile.headers.get('x-request-id')).not.toBe('x'.repeat(200));
  });

  it('get security headers and no x-powered-by', async () => {
    const response = await fetch(`${api.url}/health`);
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    // Production CSP does not allow inline scripts (Ruru is development-only).
    expect(response.headers.get('content-security-policy')).not.toContain("'unsafe-inline' ");
    expect(response.headers.get('content-security-policy')).toMatch(/script-src 'self'(;|$)/);
  });

  it('refuses GraphQL bodies over 100 kB', async () => {
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(120_000) } }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const response = await fetch(`${api.url}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ errors: [{ message: 'Not found.', extensions: { code: 'NOT_FOUND' } }] });
  });

  it('does not serve Ruru in production', async () => {
    const response = await fetch(`${api.url}/graphiql`);
    expect(response.status).toBe(404);
    const viaGet = await fetch(`${api.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await viaGet.text()).not.toContain('<html');
  });
});

describe('shutdown', () => {
  it('finishes an in-flight request before closing, then refuses new ones', async () => {
    const local = await startTestApi();
    const body = JSON.stringify({ query: '{ __typename }' });
    // Send the headers and half the body, start closing, then send the rest:
    // the request began before shutdown, so it must still be answered.
    const request = http.request(`${local.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      request.on('response', (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      request.on('error', reject);
    });
    // Wait for the server to parse the headers, not for a fixed time: on a
    // loaded machine 100 ms could pass before the connection was even
    // accepted, and a connection not yet accepted is rightly reset by close.
    const received = new Promise((resolve) => local.api.server.once('request', resolve));
    request.write(body.slice(0, 10));
    await received;
    const closing = local.close();
    await new Promise((r) => setTimeout(r, 100));
    request.end(body.slice(10));
    expect(await response).toEqual({ status: 200, text: '{"data":{"__typename":"Query"}}' });
    await closing;
    await expect(fetch(`${local.url}/health`)).rejects.toThrow();
  });
});
