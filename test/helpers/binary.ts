import { webhookHeaders } from './signing.js';

/** A valid binary-mode request (ce-* headers, JSON body `body`), signed over `body` exactly. */
export function signedBinary(
  secret: string,
  event: { id: string; type: string; source?: string; time?: string },
  body: string,
  contentType = 'application/json',
): { headers: Record<string, string>; body: string } {
  return {
    body,
    headers: {
      'content-type': contentType,
      'ce-specversion': '1.0',
      'ce-id': event.id,
      'ce-source': event.source ?? 'users',
      'ce-type': event.type,
      'ce-time': event.time ?? new Date().toISOString(),
      ...webhookHeaders(secret, event.id, body),
    },
  };
}
