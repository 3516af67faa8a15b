// Revio's JSON shapes as REVIO_API.md records them. Only the fields pgwallet
// reads are typed strictly; the rest are kept open (`[key: string]: unknown`)
// so a new field from Revio never breaks parsing. Money is integer minor units
// (cents); timestamps are integer Unix seconds.

export const PURCHASE_STATUSES = [
  'created', 'sent', 'viewed', 'pending_execute', 'pending_charge', 'paid', 'error', 'blocked',
  'cancelled', 'overdue', 'expired', 'hold', 'pending_capture', 'released', 'pending_release',
  'preauthorized', 'cleared', 'settled', 'pending_refund', 'refunded', 'chargeback',
] as const;
export type PurchaseStatus = (typeof PURCHASE_STATUSES)[number];

export const PAYOUT_STATUSES = ['initialized', 'pending', 'success', 'error'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

export const WEBHOOK_EVENTS = [
  'purchase.created', 'purchase.viewed', 'purchase.paid', 'purchase.payment_failure', 'purchase.cancelled',
  'purchase.pending_execute', 'purchase.pending_charge', 'purchase.hold', 'purchase.captured',
  'purchase.pending_capture', 'purchase.capture_failure', 'purchase.released', 'purchase.pending_release',
  'purchase.release_failure', 'purchase.preauthorized', 'purchase.pending_refund', 'purchase.refund_failure',
  'purchase.recurring_token_deleted', 'purchase.pending_recurring_token_delete',
  'purchase.subscription_charge_failure', 'purchase.settled', 'payment.refunded', 'payment.charged_back',
  'payment.chargeback_reversed', 'payout.created', 'payout.pending', 'payout.success', 'payout.failed',
  'billing_template_client.subscription_billing_cancelled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export interface StatusHistoryEntry {
  status: string;
  timestamp: number;
  [key: string]: unknown;
}

export interface Product {
  name: string;
  /** Minor units (cents). */
  price: number;
  quantity?: string | number;
  discount?: number;
  tax_percent?: string | number;
  category?: string;
}

export interface PurchaseClient {
  email: string;
  full_name?: string;
  phone?: string;
  [key: string]: unknown;
}

export interface PaymentDetails {
  is_outgoing: boolean;
  payment_type?: string;
  amount: number;
  currency: string;
  net_amount: number;
  fee_amount: number;
  paid_on: number | null;
  description?: string;
  [key: string]: unknown;
}

export interface AttemptError {
  code: string;
  message: string;
}

/** Fields purchases and payouts share. */
export interface RevioObject {
  id: string;
  status_history: StatusHistoryEntry[];
  /** Our own reference (deposit or withdrawal id); '' when none was sent. */
  reference: string;
  reference_generated: string;
  brand_id: string;
  company_id: string;
  is_test: boolean;
  created_on: number;
  updated_on: number;
  [key: string]: unknown;
}

export interface Purchase extends RevioObject {
  type: 'purchase';
  status: PurchaseStatus;
  checkout_url: string;
  purchase: {
    currency: string;
    products: Product[];
    total: number;
    metadata?: Record<string, unknown> | null;
    due_strict?: boolean;
    [key: string]: unknown;
  };
  payment: PaymentDetails | null;
  transaction_data: { attempts: { error?: AttemptError | null; [key: string]: unknown }[]; [key: string]: unknown };
  client: PurchaseClient;
  due: number | null;
  success_redirect: string | null;
  failure_redirect: string | null;
  cancel_redirect: string | null;
  success_callback: string | null;
  [key: string]: unknown;
}

export interface PayoutClient {
  email: string;
  phone?: string;
  bank_account?: string;
  country?: string;
  full_name?: string;
  [key: string]: unknown;
}

export interface Payout extends RevioObject {
  type: 'payout';
  status: PayoutStatus;
  execution_url: string;
  payment: PaymentDetails;
  client: PayoutClient;
  /** Where the sandbox puts a failure's reason ([A]: undocumented for payouts). */
  transaction_data?: { attempts: { error?: AttemptError | null; [key: string]: unknown }[]; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * A Payment object: what POST /purchases/{id}/refund/ answers and what
 * payment.refunded / payment.charged_back carry, `related_to` naming the
 * purchase (REVIO_API.md §2, §4). Its other fields are not documented ([A],
 * docs/revio.md): the sandbox sends PaymentDetails' fields at the top level
 * plus status, created_on and updated_on.
 */
export interface RevioPayment {
  id: string;
  type: 'payment';
  status?: string;
  payment_type?: string;
  is_outgoing?: boolean;
  amount: number;
  currency: string;
  net_amount?: number;
  fee_amount?: number;
  related_to: { type: string; id: string };
  created_on?: number;
  updated_on?: number;
  [key: string]: unknown;
}

export interface Webhook {
  id: string;
  type?: 'webhook';
  title: string;
  all_events: boolean;
  events: string[];
  callback: string;
  /** PEM (SPKI) RSA public key that verifies this webhook's X-Signature. */
  public_key: string;
  created_on: number;
  updated_on: number;
  [key: string]: unknown;
}

/** A list page: follow `next` until it is null. */
export interface Page<T> {
  results: T[];
  next: string | null;
  previous: string | null;
}

/** A webhook or success_callback body: the object snapshot plus `event_type`. */
export type WebhookEvent =
  | (Purchase & { event_type: `purchase.${string}` })
  | (Payout & { event_type: `payout.${string}` })
  | ({ id: string; type: string; event_type: string; [key: string]: unknown });

// ---- Inputs of the typed calls -------------------------------------------

export interface CreatePurchaseInput {
  /** Minor units (cents), a positive whole number; a bigint or digit string (PostgreSQL bigint) is accepted. */
  amount: number | bigint | string;
  /** ISO 4217; defaults to the client's currency (ZAR unless configured). */
  currency?: string;
  /** Our own reference (the deposit id), at most 128 characters. */
  reference: string;
  client: PurchaseClient;
  /** The single product line the checkout page shows. Default "Wallet deposit". */
  productName?: string;
  successRedirect?: string;
  failureRedirect?: string;
  cancelRedirect?: string;
  successCallback?: string;
  /** Unix seconds. */
  due?: number;
  dueStrict?: boolean;
  metadata?: Record<string, unknown>;
  /** Overrides the client's configured brand. */
  brandId?: string;
}

export interface CreatePayoutInput {
  /** Minor units (cents), a positive whole number; a bigint or digit string (PostgreSQL bigint) is accepted. */
  amount: number | bigint | string;
  currency?: string;
  /** Our own reference (the withdrawal id), at most 128 characters. */
  reference: string;
  description?: string;
  client: PayoutClient;
  brandId?: string;
}

/**
 * Body for POST execution_url. The layout for South African banks is not
 * documented ([A]); this follows Paytota's bank example plus SA fields.
 */
export interface ExecutePayoutInput {
  accountNumber: string;
  accountInstitution: string;
  paymentMode?: string;
  country?: string;
  branchCode?: string;
  accountType?: string;
  accountHolder?: string;
  [key: string]: unknown;
}

export interface CreateWebhookInput {
  title: string;
  callback: string;
  /** Either a list of events or allEvents: true. */
  events?: WebhookEventType[] | string[];
  allEvents?: boolean;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Overrides the client's default timeout for this call. */
  timeoutMs?: number;
  /** Aborts the call early (combined with the timeout). */
  signal?: AbortSignal;
}
