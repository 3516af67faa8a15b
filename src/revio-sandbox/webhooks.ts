// Webhook registrations: POST/GET /webhooks/, GET/PUT/PATCH/DELETE
// /webhooks/{id}/. Every webhook's `public_key` is the sandbox's one company
// key (real Revio may give each webhook its own key pair: verify deliveries
// with the key of the webhook that registered them).
import { randomUUID } from 'node:crypto';
import { WEBHOOK_EVENTS, type Webhook } from '../revio/types.ts';
import { asObject, fieldError, notFound, optionalString, optionalUrl, type Json } from './api-errors.ts';
import type { SandboxCore } from './core.ts';

const KNOWN_EVENTS = new Set<string>(WEBHOOK_EVENTS);

function fieldsFrom(body: Json, partial: boolean): Partial<Pick<Webhook, 'title' | 'callback' | 'events' | 'all_events'>> {
  const out: Partial<Pick<Webhook, 'title' | 'callback' | 'events' | 'all_events'>> = {};
  if (!partial || body.title !== undefined) {
    const title = optionalString(body, 'title', [], 100);
    if (!title) throw fieldError(['title'], 'This field is required.', 'required');
    out.title = title;
  }
  if (!partial || body.callback !== undefined) {
    const callback = optionalUrl(body, 'callback');
    if (!callback) throw fieldError(['callback'], 'This field is required.', 'required');
    out.callback = callback;
  }
  if (body.all_events !== undefined) {
    if (typeof body.all_events !== 'boolean') throw fieldError(['all_events'], 'Must be a valid boolean.');
    out.all_events = body.all_events;
  }
  if (body.events !== undefined) {
    if (!Array.isArray(body.events)) throw fieldError(['events'], 'Expected a list of items.');
    for (const [index, event] of body.events.entries()) {
      if (typeof event !== 'string' || !KNOWN_EVENTS.has(event)) throw fieldError(['events', String(index)], `"${String(event)}" is not a valid choice.`, 'invalid_choice');
    }
    out.events = [...new Set(body.events as string[])];
  }
  return out;
}

export function createWebhook(core: SandboxCore, rawBody: unknown): Webhook {
  const fields = fieldsFrom(asObject(rawBody, []), false);
  const allEvents = fields.all_events ?? false;
  const events = fields.events ?? [];
  if (!allEvents && events.length === 0) throw fieldError(['events'], 'Choose at least one event, or set all_events.', 'required');
  const now = core.now();
  const webhook: Webhook = {
    id: randomUUID(),
    type: 'webhook',
    title: fields.title!,
    all_events: allEvents,
    events,
    callback: fields.callback!,
    public_key: core.keys.publicKeyPem,
    created_on: now,
    updated_on: now,
  };
  core.store.state.webhooks[webhook.id] = webhook;
  core.store.changed();
  return webhook;
}

export function getWebhook(core: SandboxCore, id: string): Webhook {
  const webhook = core.store.state.webhooks[id];
  if (!webhook) throw notFound();
  return webhook;
}

export function listWebhooks(core: SandboxCore, query: URLSearchParams) {
  return core.page(Object.values(core.store.state.webhooks), 'webhooks/', query);
}

/** PUT (partial = false: title and callback required) or PATCH. */
export function updateWebhook(core: SandboxCore, id: string, rawBody: unknown, partial: boolean): Webhook {
  const webhook = getWebhook(core, id);
  const fields = fieldsFrom(asObject(rawBody, []), partial);
  const next = { ...webhook, ...fields, updated_on: core.now() };
  if (!next.all_events && next.events.length === 0) throw fieldError(['events'], 'Choose at least one event, or set all_events.', 'required');
  core.store.state.webhooks[id] = next;
  core.store.changed();
  return next;
}

/** Deletes the registration; its pending deliveries are dropped. */
export function deleteWebhook(core: SandboxCore, id: string): void {
  getWebhook(core, id);
  delete core.store.state.webhooks[id];
  for (const delivery of core.store.state.deliveries) {
    if (delivery.state === 'pending' && delivery.target.kind === 'webhook' && delivery.target.webhookId === id) {
      delivery.state = 'dropped';
      delivery.reason = 'webhook deleted';
    }
  }
  core.store.changed();
}
