import { writeFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { resolveConfig, resolveTarget, type EventBusOptions } from '../../src/config.js';
import { ConfigError } from '../../src/errors/index.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { type Issued, testPki } from '../helpers/tls.js';

/**
 * Where a target's TLS comes from: its own settings over the bus's (field by field, the client
 * certificate and key as a pair), options over the environment's PEM files; what is wrong with
 * them is a ConfigError naming the setting; files are read again when they change.
 */
const SECRET = 'whsec_' + Buffer.alloc(24, 1).toString('base64');

let dir: TempDir;
let ca: Issued;
let otherCa: Issued;
let alice: Issued;
let bob: Issued;
beforeAll(() => {
  dir = tempDir('tls-config');
  const pki = testPki(dir);
  ca = pki.ca('ca');
  otherCa = pki.ca('other-ca');
  alice = pki.issue(ca, 'alice');
  bob = pki.issue(ca, 'bob');
});
afterAll(() => dir.remove());

const log = createCapturingLogger('info');
function tlsOf(options: EventBusOptions, name = 'payments'): ConnectionOptions | undefined {
  const config = resolveConfig({ service: 'users', secret: SECRET, logger: log.logger, env: {}, services: { payments: 'https://payments.internal/events' }, ...options });
  return resolveTarget(config, name).tls?.current();
}
const text = (pem: unknown): string => String(pem);

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('TLS settings of a target', () => {
  it('has none unless set: Node’s public CAs, no client certificate', () => {
    expect(tlsOf({})).toBeUndefined();
  });

  it('takes the bus’s default, from options or from the files EVENTS_TLS_* name', () => {
    expect(tlsOf({ tls: { ca: ca.cert, servername: 'payments' } })).toEqual({ ca: ca.cert, servername: 'payments' });
    const fromEnv = tlsOf({ env: { EVENTS_TLS_CA_FILE: ca.certFile, EVENTS_TLS_CERT_FILE: alice.certFile, EVENTS_TLS_KEY_FILE: alice.keyFile } });
    expect([fromEnv?.ca, fromEnv?.cert, fromEnv?.key].map(text)).toEqual([ca.cert, alice.cert, alice.key]);
  });

  it('prefers options to the environment, and a target’s own to the default, field by field', () => {
    const options: EventBusOptions = {
      tls: { ca: otherCa.cert, cert: alice.cert, key: alice.key },
      services: { payments: { url: 'https://payments.internal/events', tls: { ca: ca.cert } } },
      env: { EVENTS_SERVICE_PAYMENTS_TLS_CA_FILE: otherCa.certFile, EVENTS_TLS_CERT_FILE: bob.certFile, EVENTS_TLS_KEY_FILE: bob.keyFile },
    };
    const tls = tlsOf(options);
    expect([tls?.ca, tls?.cert, tls?.key].map(text)).toEqual([ca.cert, alice.cert, alice.key]);

    // The target's own files over the bus's options; its client certificate and key as a pair.
    const own = tlsOf({
      tls: { ca: otherCa.cert, cert: alice.cert, key: alice.key, passphrase: 'for-alice' },
      env: { EVENTS_SERVICE_PAYMENTS_TLS_CERT_FILE: bob.certFile, EVENTS_SERVICE_PAYMENTS_TLS_KEY_FILE: bob.keyFile },
    });
    expect([own?.ca, own?.cert, own?.key, own?.passphrase].map(text)).toEqual([otherCa.cert, bob.cert, bob.key, 'undefined']);
  });

  it('applies to https:// targets only, and to an amqps:// or kafkas:// broker', () => {
    expect(tlsOf({ tls: { ca: ca.cert }, services: { payments: 'http://payments.internal/events' } })).toBeUndefined();
    const config = resolveConfig({ service: 'users', secret: SECRET, env: {}, logger: log.logger, tls: { ca: ca.cert }, broker: 'amqps://mq.internal' });
    expect(config.broker?.tls?.current()).toEqual({ ca: ca.cert });
    expect(resolveTarget(config, 'payments').tls).toBeUndefined();
  });

  it('refuses what cannot work, naming the setting', () => {
    expect(configError(() => tlsOf({ env: { EVENTS_TLS_CA_FILE: dir.file('missing.pem') } }))).toMatchObject({
      variable: 'EVENTS_TLS_CA_FILE',
      message: expect.stringMatching(/^EVENTS_TLS_CA_FILE: cannot read .*missing\.pem \(ENOENT\)/),
    });
    expect(configError(() => tlsOf({ env: { EVENTS_SERVICE_PAYMENTS_TLS_CERT_FILE: alice.certFile } })).message).toMatch(
      /^EVENTS_SERVICE_PAYMENTS_TLS_CERT_FILE is set without the client certificate's key/,
    );
    expect(configError(() => tlsOf({ tls: { ca: 'not a certificate' } })).message).toMatch(/^tls\.ca must be PEM certificates/);
    expect(configError(() => tlsOf({ tls: { cert: alice.cert, key: bob.key } })).message).toMatch(/^tls\.key: .*key values mismatch/);
  });

  it('reads its files again when they change; a half-written rotation keeps the previous ones', () => {
    const files = { ca: dir.file('rot-ca.pem'), cert: dir.file('rot.crt'), key: dir.file('rot.key') };
    writeFileSync(files.ca, ca.cert);
    writeFileSync(files.cert, alice.cert);
    writeFileSync(files.key, alice.key);
    const config = resolveConfig({
      service: 'users',
      secret: SECRET,
      logger: log.logger,
      env: { EVENTS_TLS_CA_FILE: files.ca, EVENTS_TLS_CERT_FILE: files.cert, EVENTS_TLS_KEY_FILE: files.key },
    });
    const material = config.tls!;
    const first = material.current();
    material.recheck();
    expect(material.current()).toBe(first); // unchanged files: the same options, the same agent

    writeFileSync(files.cert, bob.cert); // the certificate rotated, its key not yet
    material.recheck();
    expect(material.current()).toBe(first);
    expect(log.withMessage('TLS files changed but cannot be used; keeping the previous ones')).toHaveLength(1);

    writeFileSync(files.key, bob.key);
    material.recheck();
    const rotated = material.current();
    expect([rotated.cert, rotated.key].map(text)).toEqual([bob.cert, bob.key]);
    expect(log.withMessage('TLS files changed; new connections use them')).toHaveLength(1);
  });
});
