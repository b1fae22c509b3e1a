import { randomUUID } from 'node:crypto';
import { BATCH_CONTENT_TYPE, type BatchResult } from '../../src/protocol/cloudevents.js';
import { webhookHeaders, type SignedRequest } from './signing.js';

/**
 * A CloudEvents batch as our sender builds it: `[` + the structured bodies joined by `,` + `]`,
 * signed once over those exact bytes under a fresh `batch_<uuid>` webhook-id. Items may be any
 * JSON (or raw text), so a test can put a malformed one among valid events.
 */
export function signedBatch(secret: string, items: ReadonlyArray<unknown>, signedAt: Date = new Date()): SignedRequest {
  return signedBatchBody(secret, `[${items.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(',')}]`, signedAt);
}

/** `body`, exactly as given, sent as a signed batch request (for bodies that are not arrays). */
export function signedBatchBody(secret: string, body: string, signedAt: Date = new Date()): SignedRequest {
  return { body, headers: { 'content-type': BATCH_CONTENT_TYPE, ...webhookHeaders(secret, `batch_${randomUUID()}`, body, signedAt) } };
}


/** The `results` of a batch answer (throws when the body has none, so a test fails clearly). */
export function resultsOf(json: unknown): BatchResult[] {
  const results = (json as { results?: unknown } | undefined)?.results;
  if (!Array.isArray(results)) throw new Error(`the answer has no results array: ${JSON.stringify(json)}`);
  return results as BatchResult[];
}
