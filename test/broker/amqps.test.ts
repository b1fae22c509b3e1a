import net from 'node:net';
import tls from 'node:tls';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { BROKER_HOST, BROKER_PORT, createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { type Issued, testPki } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `amqps://` with the bus's `tls`: the real RabbitMQ behind a TLS terminator that asks for a client
 * certificate signed by the company CA (as a TLS listener of RabbitMQ configured for peer
 * verification would), and that records the certificates it saw.
 */
describeWithBroker('amqps:// with a private CA and a client certificate', () => {
  takeBrokerTurns();
  const secret = newSecret();
  const cleanups = cleanupAfterEach();
  let vhost: TestVhost;
  let dir: TempDir;
  let ca: Issued;
  let client: Issued;
  let terminator: net.Server;
  const peers: string[] = [];

  beforeAll(async () => {
    vhost = createVhost('amqps');
    dir = tempDir('amqps');
    const pki = testPki(dir);
    ca = pki.ca('mq-ca');
    const server = pki.issue(ca, 'mq');
    client = pki.issue(ca, 'users');
    terminator = tls.createServer({ cert: server.cert, key: server.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (socket) => {
      peers.push(socket.getPeerCertificate().subject.CN as string);
      const upstream = net.connect(BROKER_PORT, BROKER_HOST);
      socket.pipe(upstream).pipe(socket);
      const end = (): void => void (socket.destroy(), upstream.destroy());
      socket.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => terminator?.close(resolve));
    vhost?.remove();
    dir?.remove();
  });

  function bus(service: string, url: string, options: EventBusOptions = {}): EventBus {
    const b = createEventBus({ service, secret, env: {}, logger: quietLogger(), broker: { url, prefix: 'tls.' }, inbox: { volatile: true }, shutdownTimeoutMs: 300, ...options });
    cleanups.push(() => b.close());
    return b;
  }

  /** The vhost's URL through the terminator. */
  function amqpsUrl(): string {
    const { port } = terminator.address() as net.AddressInfo;
    const url = new URL(vhost.url);
    url.port = String(port);
    return url.href.replace(/^amqp:/, 'amqps:');
  }

  it('publishes over amqps:// with the bus’s CA and client certificate', async () => {
    const received: unknown[] = [];
    const payments = bus('payments', vhost.url);
    payments.subscribeTo('to-payments', (data) => void received.push(data));
    await payments.start();
    const users = bus('users', amqpsUrl(), { tls: { ca: ca.cert, cert: client.cert, key: client.key } }).declareEvent('to-payments', ['payments']);

    await users.emit('to-payments', { n: 1 });

    await waitFor(() => received.length === 1, { what: 'the event through amqps://' });
    expect(received).toEqual([{ n: 1 }]);
    expect(peers).toContain('users');
  });

  it('keeps the event while the broker refuses its client certificate', async () => {
    const log = createCapturingLogger('warn');
    const users = bus('users', amqpsUrl(), { tls: { ca: ca.cert }, logger: log.logger }).declareEvent('to-payments', ['payments']);

    await users.emit('to-payments', { n: 2 });

    await waitFor(() => log.withMessage('broker unreachable; retrying').length > 0, { what: 'the refused connection' });
    expect(await users.deadLetters()).toEqual([]);
    expect((await users.outboxStats()).pending).toBe(1);
  });
});
