// The Revio client's public surface.
export { createRevioClient, REVIO_API_URL, type RevioClient, type RevioClientOptions } from './client.ts';
export { revioSettingsFromEnv, type RevioSettings } from './config.ts';
export { RevioError, isRetryable, parseErrorBody, parseRetryAfter, type RevioErrorKind } from './errors.ts';
export type { RevioLogger } from './http.ts';
export { publicKeySource, type PublicKeySource } from './public-key.ts';
export { loadPublicKey, signRevioBody, verifyRevioSignature } from './signature.ts';
export { toCents, toCurrency } from './amounts.ts';
export * from './types.ts';
