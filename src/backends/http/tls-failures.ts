import { envKey, type ResolvedTarget } from '../../config.js';

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** A TLS alert from the server about our certificate: `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`, `…_ALERT_UNKNOWN_CA`, `…_ALERT_BAD_CERTIFICATE`, … */
const CLIENT_CERT_ALERT = /^ERR_SSL_\w*ALERT_(\w*CERTIFICATE\w*|UNKNOWN_CA|ACCESS_DENIED)$/;

/** The connection closed before any answer: what a server that refuses our client certificate after the handshake does. */
const CLOSED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * A network error of an `https://` target as an operator reads it: which certificate is at fault
 * and which setting fixes it. Other errors, and every error of an `http://` target, are as given.
 */
export function tlsFailure(error: string, target: ResolvedTarget): string {
  if (!target.url.startsWith('https:')) return error;
  const { name } = target;
  const { origin, hostname } = new URL(target.url);
  const variable = (field: string): string => `EVENTS_SERVICE_${envKey(name)}_TLS_${field}_FILE`;
  const clientCert = clientCertificateSettings(name);
  if (UNTRUSTED.has(error)) {
    return (
      `certificate not trusted: set ${variable('CA')} (or services.${name}.tls.ca; EVENTS_TLS_CA_FILE for every target) ` +
      `to the CA that signed the certificate of ${origin} (${error}); deliveries are kept and retried`
    );
  }
  if (error === 'CERT_HAS_EXPIRED' || error === 'CERT_NOT_YET_VALID') {
    return `the certificate of ${origin} is expired or not yet valid (${error}): renew it on the server; deliveries are kept and retried`;
  }
  if (error === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate of ${origin} does not name ${hostname} (${error}): fix the URL, or set services.${name}.tls.servername to a name it holds; deliveries are kept and retried`;
  }
  const hasCert = target.tls?.parts.cert !== undefined;
  if (CLIENT_CERT_ALERT.test(error)) {
    const what = hasCert ? 'client certificate refused' : 'client certificate required';
    return `${what} by ${name} (${error}): set ${clientCert} to a certificate its CA trusts; deliveries are kept and retried`;
  }
  if (CLOSED.has(error)) {
    return (
      `${error}: ${name} closed the connection before answering; if it requires a client certificate, ` +
      `${hasCert ? 'it refused ours' : 'none is set'}: check ${clientCert}; deliveries are kept and retried`
    );
  }
  return error;
}

/** Where a target's client certificate is set. */
export function clientCertificateSettings(name: string): string {
  const prefix = `EVENTS_SERVICE_${envKey(name)}_TLS`;
  return `${prefix}_CERT_FILE and ${prefix}_KEY_FILE (or services.${name}.tls.cert and .key)`;
}
