// The sandbox's RSA key pair: given as a PEM, kept in the state file, or
// generated at start (3072 bits, like Revio's published example key).
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

export interface SandboxKeys {
  privateKey: KeyObject;
  privateKeyPem: string;
  /** SPKI PEM, as GET /public_key/ and Webhook.public_key return it. */
  publicKeyPem: string;
}

const generate = promisify(generateKeyPair);

export function keysFromPem(privateKeyPem: string): SandboxKeys {
  const privateKey = createPrivateKey(privateKeyPem.replace(/\\n/g, '\n'));
  if (privateKey.asymmetricKeyType !== 'rsa') throw new TypeError('The Revio sandbox key must be an RSA private key.');
  return {
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function generateKeys(bits = 3072): Promise<SandboxKeys> {
  const { privateKey } = await generate('rsa', { modulusLength: bits });
  return keysFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}
