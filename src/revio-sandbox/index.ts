// The Revio sandbox's public surface: start it with startRevioSandbox().
export { DEFAULT_SANDBOX_API_KEY, DEFAULT_SANDBOX_BRAND_ID, startRevioSandbox, type RevioSandbox, type RevioSandboxOptions } from './server.ts';
export { OPERATIONS, type EndpointFaults, type Operation, type SandboxFaults, type SandboxFaultsInput, type WebhookFaults } from './faults.ts';
export { DELIVERY_WINDOW_SECONDS, MAX_ATTEMPTS, RETRY_GAPS_SECONDS, type SandboxLogger } from './deliveries.ts';
export { SUCCESS_CARDS, TEST_CVC, successCard, type CardInput } from './cards.ts';
export { REJECTED_ACCOUNT } from './payouts.ts';
export { generateKeys, keysFromPem, type SandboxKeys } from './keys.ts';
export { sandboxOptionsFromEnv } from './config.ts';
