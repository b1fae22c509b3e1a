import { receiptVariable, redactUrl, secretVariable, urlVariable } from '../../config.js';
import type { Delivery, DeliveryHint, DeliveryResult } from '../../send/transport.js';
import type { HttpResult } from './answer.js';
import { clientCertificateSettings } from './tls-failures.js';

/**
 * What an operator should check when a target keeps refusing deliveries for a reason that is
 * theirs to fix (a secret, a deploy, a URL), or answers with something other than an events
 * receipt. The dispatcher says each once per state change per target, not per event.
 */

/**
 * A result as the dispatcher reads it: with the likely cause of its answer, without the HTTP
 * receipt flag. A 2xx without the events middleware's receipt is not a delivery (unless the
 * target opted out with `receipt: false`): kept and retried, and said.
 */
export function explained({ receipt, ...result }: HttpResult, delivery: Delivery): DeliveryResult {
  const { name, url } = delivery.target;
  if (result.outcome === 'delivered' && receipt === false && delivery.target.receipt) {
    const { status, attempts } = result;
    return { outcome: 'retry', status, attempts, error: `HTTP ${status} without an events receipt`, targetDown: true, hint: notReceiptHint(status, name, url) };
  }
  const hint = result.outcome === 'retry' && !result.batchUnsupported ? failureHint(result.status, name, url, delivery.type) : undefined;
  return hint ? { ...result, hint } : result;
}

/** A 2xx that is not an events receipt: the URL reaches something else than the events middleware. */
function notReceiptHint(status: number | undefined, target: string, url: string): DeliveryHint {
  return {
    key: 'not-a-receipt',
    scope: 'target',
    message:
      `${status} from ${target} at ${redactUrl(url)} is not an events receipt: the URL reaches something that is not the events middleware ` +
      `(its path is /events by default); deliveries are kept and retried. For a peer that is not events-library (a plain CloudEvents sink), ` +
      `set services.${target}.receipt: false (or ${receiptVariable(target)}=false)`,
  };
}

/** The likely cause of `status` from `target` (at `fullUrl`, named without its query string, delivering `type`), or undefined when there is nothing to say. */
export function failureHint(status: number | undefined, target: string, fullUrl: string, type: string): DeliveryHint | undefined {
  if (status === undefined || status < 300 || status >= 500) return undefined;
  const url = redactUrl(fullUrl);
  if (status < 400) {
    return {
      key: '3xx',
      scope: 'target',
      message: `${status} from ${target}: ${url} redirects, and deliveries do not follow redirects; set the final URL of its events endpoint. Deliveries are kept and retried`,
    };
  }
  const secretVar = secretVariable(target);
  switch (status) {
    case 400: // kept only when its TLS front refuses the client certificate (answer.ts)
      return {
        key: '400',
        scope: 'target',
        message: `400 from ${target}: its TLS front refuses this service's client certificate: set ${clientCertificateSettings(target)} to a certificate its CA trusts; deliveries are kept and retried`,
      };
    case 401:
      return {
        key: '401',
        scope: 'target',
        message: `401 from ${target}: check EVENTS_SECRET / ${secretVar} on both sides, and the clocks (more than 5 minutes apart is refused); deliveries are kept and retried`,
      };
    case 403:
      return {
        key: '403',
        scope: 'target',
        message: `403 from ${target}: ${url} is another service (wrong_recipient: check ${urlVariable(target)}), or something in front of the receiver (a proxy, firewall or auth layer) refuses this sender; deliveries are kept and retried`,
      };
    case 404:
      return {
        key: `404 ${type}`,
        scope: 'type',
        message: `404 from ${target}: is the receiver deployed and subscribed to ${type}? is the URL (${url}) right? deliveries are kept and retried`,
      };
    case 405:
      return {
        key: '405',
        scope: 'target',
        message: `405 from ${target}: ${url} does not take POST; is it the events endpoint (the middleware's path, /events by default)? deliveries are kept and retried`,
      };
    default:
      return {
        key: `${status} ${type}`,
        scope: 'type',
        message: `${status} from ${target} at ${url}: deliveries are kept and retried until the redelivery horizon`,
      };
  }
}
