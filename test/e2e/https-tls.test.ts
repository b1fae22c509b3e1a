import { writeFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { startRecordingServer, type RecordingServer } from '../helpers/recording-server.js';
import { startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { type Issued, testPki } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/**
 * HTTPS as services run it inside a company, over each HTTP client: targets whose certificates a
 * private CA signs, which ask for a client certificate (mutual TLS). A certificate problem is
 * said for what it is, and the event is kept (certificates get fixed), never dead-lettered at once.
 */
const clients = ['axios', 'undici'] as const;

let dir: TempDir;
let companyCa: Issued;
let otherCa: Issued;
let server: Issued; // payments' server certificate, signed by the company CA
let client: Issued; // users' client certificate, signed by the company CA
let stranger: Issued; // a client certificate signed by another CA
beforeAll(() => {
  dir = tempDir('tls');
  const pki = testPki(dir);
  companyCa = pki.ca('company-ca');
  otherCa = pki.ca('other-ca');
  server = pki.issue(companyCa, 'payments');
  client = pki.issue(companyCa, 'users');
  stranger = pki.issue(otherCa, 'stranger');
});
afterAll(() => dir.remove());

const open = closeAfterEach();
let secret: string;
let log: CapturingLogger;
beforeEach(() => {
  secret = newSecret();
  log = createCapturingLogger('debug');
});

/** payments over HTTPS with the company's server certificate; asking every client for a certificate the company CA signed. */
async function mutualTlsTarget(): Promise<RecordingServer> {
  const target = await startRecordingServer({ tls: { cert: server.cert, key: server.key, ca: companyCa.cert, requestCert: true, rejectUnauthorized: true } });
  open.push(target);
  return target;
}

describe.each(clients)('HTTPS targets over %s', (httpClient) => {
  function users(options: EventBusOptions): EventBus {
    const bus = createEventBus({
      service: 'users',
      secret,
      logger: log.logger,
      env: {},
      httpClient,
      retry: { retries: 0 },
      redelivery: { baseDelayMs: 50, maxDelayMs: 100, probeMaxDelayMs: 100 },
      shutdownTimeoutMs: 300,
      ...options,
    });
    open.unshift(bus);
    bus.declareEvent('to-payments', ['payments']);
    return bus;
  }

  /** The first failure's line, once the event has failed at least `count` times; the event is still pending, not dead. */
  async function keptWith(bus: EventBus, count = 1): Promise<string> {
    const failures = await waitFor(() => {
      const lines = log.records.filter((r) => r.message === 'delivery failed; will redeliver' || r.message === 'target down; probing before sending more');
      return lines.length >= count && lines;
    });
    expect(await bus.deadLetters()).toEqual([]);
    expect((await bus.outboxStats()).pending).toBe(1);
    return String(failures[0]!.error);
  }

  it('delivers with mutual TLS to a service whose middleware sees the client certificate', async () => {
    const received: unknown[] = [];
    const peers: unknown[] = [];
    const payments = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {} });
    open.unshift(payments);
    payments.subscribeTo('to-payments', (data) => void received.push(data));
    const app = express()
      .use((req, _res, next) => {
        peers.push((req.socket as TLSSocket).getPeerCertificate().subject?.CN);
        next();
      })
      .use(payments.expressMiddleware());
    const target = await startServer(app, 0, { cert: server.cert, key: server.key, ca: companyCa.cert, requestCert: true, rejectUnauthorized: true });
    open.push(target);

    await users({ services: { payments: { url: target.url, tls: { ca: companyCa.cert, cert: client.cert, key: client.key } } } }).emit('to-payments', { n: 1 });

    await waitFor(() => received.length === 1, { what: 'the handler' });
    expect(received).toEqual([{ n: 1 }]);
    expect(peers).toEqual(['users']);
    await waitFor(() => log.withMessage('event delivered').length === 1);
  });

  it('takes the PEM files the environment names; the target’s own wins over the default for every target', async () => {
    const target = await mutualTlsTarget();
    const env = {
      EVENTS_SERVICE_PAYMENTS_URL: target.url,
      EVENTS_TLS_CA_FILE: otherCa.certFile, // the default: wrong for payments
      EVENTS_TLS_CERT_FILE: client.certFile,
      EVENTS_TLS_KEY_FILE: client.keyFile,
      EVENTS_SERVICE_PAYMENTS_TLS_CA_FILE: companyCa.certFile, // payments' own: right
    };
    await users({ env }).emit('to-payments', { n: 1 });

    await waitFor(() => target.requests.length === 1, { what: 'the delivery' });
    await waitFor(() => log.withMessage('event delivered').length === 1);
  });

  it('keeps an event whose target presents a certificate no trusted CA signed, and says which variable fixes it', async () => {
    const target = await mutualTlsTarget();
    const bus = users({ services: { payments: { url: target.url, tls: { cert: client.cert, key: client.key } } } }); // no CA: Node's public ones
    await bus.emit('to-payments', { n: 1 });

    const error = await keptWith(bus);
    expect(error).toMatch(/^certificate not trusted: set EVENTS_SERVICE_PAYMENTS_TLS_CA_FILE .*\(SELF_SIGNED_CERT_IN_CHAIN\)/);
    expect(target.requests).toEqual([]);
  });

  it.each([
    ['another CA signed', () => ({ cert: stranger.cert, key: stranger.key })],
    ['none is set', () => ({})],
  ])('keeps an event whose target refuses the client certificate (%s), and says so', async (_case, identity) => {
    const target = await mutualTlsTarget();
    const bus = users({ services: { payments: { url: target.url, tls: { ca: companyCa.cert, ...identity() } } } });
    await bus.emit('to-payments', { n: 1 });

    const error = await keptWith(bus);
    expect(error).toMatch(/client certificate/);
    expect(error).toMatch(/EVENTS_SERVICE_PAYMENTS_TLS_CERT_FILE and EVENTS_SERVICE_PAYMENTS_TLS_KEY_FILE/);
    expect(target.requests).toEqual([]);
  });

  it('keeps an event that an nginx front answers with its 400 "No required SSL certificate was sent"', async () => {
    const page = '<html><head><title>400 No required SSL certificate was sent</title></head><body><center><h1>400 Bad Request</h1></center></body></html>';
    const target = await startRecordingServer({ tls: { cert: server.cert, key: server.key }, then: { status: 400, headers: { 'content-type': 'text/html' }, body: page } });
    open.push(target);
    const bus = users({ services: { payments: { url: target.url, tls: { ca: companyCa.cert } } } });
    await bus.emit('to-payments', { n: 1 });

    await keptWith(bus);
    const hint = await waitFor(() => log.records.find((r) => String(r.message).startsWith('400 from payments')));
    expect(hint.message).toMatch(/refuses this service's client certificate: set EVENTS_SERVICE_PAYMENTS_TLS_CERT_FILE and EVENTS_SERVICE_PAYMENTS_TLS_KEY_FILE/);
  });

  it('picks up a rotated CA file without a restart', async () => {
    const target = await mutualTlsTarget();
    const caFile = dir.file(`rotating-ca-${httpClient}.pem`);
    writeFileSync(caFile, otherCa.cert);
    const bus = users({
      env: { EVENTS_TLS_CA_FILE: caFile, EVENTS_TLS_CERT_FILE: client.certFile, EVENTS_TLS_KEY_FILE: client.keyFile },
      services: { payments: target.url },
    });
    await bus.emit('to-payments', { n: 1 });
    expect(await keptWith(bus)).toMatch(/^certificate not trusted/);

    writeFileSync(caFile, companyCa.cert);

    await waitFor(() => log.withMessage('event delivered').length === 1, { what: 'the delivery with the new CA' });
    expect(target.requests).toHaveLength(1);
    expect(log.withMessage('TLS files changed; new connections use them')).toHaveLength(1);
  });
});
