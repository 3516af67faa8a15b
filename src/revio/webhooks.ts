// Webhook registration (REVIO_API.md §4) and the company public key.
import type { RevioContext } from './context.ts';
import { RevioError } from './errors.ts';
import { collectPages } from './pagination.ts';
import type { CallOptions, CreateWebhookInput, Webhook } from './types.ts';

/** POST /webhooks/ → Webhook, whose `public_key` verifies its deliveries. */
export async function createWebhook(ctx: RevioContext, input: CreateWebhookInput, options?: CallOptions): Promise<Webhook> {
  if (!input.allEvents && !input.events?.length) throw new RangeError('A webhook needs events or allEvents: true.');
  const body = input.allEvents
    ? { title: input.title, callback: input.callback, all_events: true, events: [] }
    : { title: input.title, callback: input.callback, all_events: false, events: input.events };
  return ctx.http.request<Webhook>({ operation: 'createWebhook', method: 'POST', path: 'webhooks/', body }, options);
}

/** GET /webhooks/, every page. */
export function listWebhooks(ctx: RevioContext, options?: CallOptions): Promise<Webhook[]> {
  return collectPages<Webhook>(ctx, 'listWebhooks', 'webhooks/', {}, options);
}

/** DELETE /webhooks/{id}/. */
export async function deleteWebhook(ctx: RevioContext, webhookId: string, options?: CallOptions): Promise<void> {
  await ctx.http.request<void>({ operation: 'deleteWebhook', method: 'DELETE', path: `webhooks/${encodeURIComponent(webhookId)}/`, expectBody: false }, options);
}

/**
 * GET /public_key/ → the company PEM key (the body is a JSON string) that
 * verifies success_callback deliveries.
 */
export async function getPublicKey(ctx: RevioContext, options?: CallOptions): Promise<string> {
  const key = await ctx.http.request<unknown>({ operation: 'getPublicKey', method: 'GET', path: 'public_key/' }, options);
  if (typeof key !== 'string' || !key.includes('-----BEGIN')) {
    throw new RevioError({ kind: 'invalid_response', operation: 'getPublicKey', method: 'GET', path: '/public_key/', status: 200 }, false);
  }
  return key;
}
