import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { parseSecret, SecretFormatError, sign, signatureHeader, verify } from '../../src/protocol/signature.js';

// The vector of standard-webhooks' own test suite (libraries/javascript/src/index.test.ts).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECRET_BASE64 = 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TIMESTAMP = 1614265330;
const PAYLOAD = '{"test": 2432232314}';
const EXPECTED = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const OTHER_SECRET = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
const TOLERANCE = 300;

const key = parseSecret(SECRET);
const otherKey = parseSecret(OTHER_SECRET);

/** A request valid at TIMESTAMP, to change in exactly one way per test. */
function validInput() {
  return {
    id: MSG_ID,
    timestamp: String(TIMESTAMP),
    signature: EXPECTED,
    body: Buffer.from(PAYLOAD),
  };
}

describe('sign', () => {
  test('matches an HMAC computed independently with node:crypto', () => {
    const independent = createHmac('sha256', Buffer.from(SECRET_BASE64, 'base64'))
      .update(`${MSG_ID}.${TIMESTAMP}.${PAYLOAD}`)
      .digest('base64');
    expect(`v1,${independent}`).toBe(EXPECTED);
    expect(sign(key, MSG_ID, TIMESTAMP, PAYLOAD)).toBe(EXPECTED);
  });

  test('matches the standardwebhooks package', () => {
    const theirs = new Webhook(SECRET).sign(MSG_ID, new Date(TIMESTAMP * 1000), PAYLOAD);
    expect(theirs).toBe(EXPECTED);
    expect(sign(key, MSG_ID, TIMESTAMP, PAYLOAD)).toBe(theirs);
  });

  test('signs a Buffer body like the same string', () => {
    expect(sign(key, MSG_ID, TIMESTAMP, Buffer.from(PAYLOAD))).toBe(EXPECTED);
  });

  test('signatureHeader puts one space-separated signature per key, in key order', () => {
    const header = signatureHeader([key, otherKey], MSG_ID, TIMESTAMP, PAYLOAD);
    expect(header.split(' ')).toEqual([EXPECTED, sign(otherKey, MSG_ID, TIMESTAMP, PAYLOAD)]);
    expect(header.split(' ')[1]).not.toBe(EXPECTED);
  });
});

describe('verify', () => {
  test('accepts the valid request', () => {
    expect(verify([key], validInput(), TOLERANCE, TIMESTAMP)).toBeUndefined();
  });

  test('rejects another id', () => {
    expect(verify([key], { ...validInput(), id: 'msg_other' }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test('rejects another timestamp (within the tolerance)', () => {
    expect(verify([key], { ...validInput(), timestamp: String(TIMESTAMP + 1) }, TOLERANCE, TIMESTAMP)).toBe(
      'no-matching-signature',
    );
  });

  test('rejects a body with one byte changed', () => {
    const body = Buffer.from(PAYLOAD);
    body[body.length - 2] = body[body.length - 2]! ^ 1;
    expect(verify([key], { ...validInput(), body }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test('rejects the wrong key', () => {
    expect(verify([otherKey], validInput(), TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test('rejects a signature that is not base64 of the HMAC', () => {
    expect(verify([key], { ...validInput(), signature: 'v1,' + 'A'.repeat(44) }, TOLERANCE, TIMESTAMP)).toBe(
      'no-matching-signature',
    );
    expect(verify([key], { ...validInput(), signature: 'v1,' }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test.each(['id', 'timestamp', 'signature'] as const)('rejects a missing %s header', (name) => {
    expect(verify([key], { ...validInput(), [name]: undefined }, TOLERANCE, TIMESTAMP)).toBe('missing-headers');
    expect(verify([key], { ...validInput(), [name]: '' }, TOLERANCE, TIMESTAMP)).toBe('missing-headers');
  });

  test('rejects the same signature under another version prefix (v2,)', () => {
    const signature = EXPECTED.replace(/^v1,/, 'v2,');
    expect(verify([key], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test('rejects the bare signature without a version prefix', () => {
    const signature = EXPECTED.slice(3);
    expect(verify([key], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  test('accepts a timestamp exactly at the tolerance, rejects one more second (stale)', () => {
    expect(verify([key], validInput(), TOLERANCE, TIMESTAMP + TOLERANCE)).toBeUndefined();
    expect(verify([key], validInput(), TOLERANCE, TIMESTAMP + TOLERANCE + 1)).toBe('timestamp-too-old');
  });

  test('accepts a future timestamp exactly at the tolerance, rejects one more second', () => {
    expect(verify([key], validInput(), TOLERANCE, TIMESTAMP - TOLERANCE)).toBeUndefined();
    expect(verify([key], validInput(), TOLERANCE, TIMESTAMP - TOLERANCE - 1)).toBe('timestamp-too-new');
  });

  test('checks the time window before the signature (a correctly signed old request is still refused)', () => {
    const old = TIMESTAMP - 3600;
    const input = { ...validInput(), timestamp: String(old), signature: sign(key, MSG_ID, old, PAYLOAD) };
    expect(verify([key], input, TOLERANCE, TIMESTAMP)).toBe('timestamp-too-old');
  });

  test.each(['abc', '1614265330.5', '-1614265330', '1e9', ' 1614265330', '0x60381', '1'.repeat(16)])(
    'rejects the non-numeric timestamp %j',
    (timestamp) => {
      expect(verify([key], { ...validInput(), timestamp }, TOLERANCE, TIMESTAMP)).toBe('bad-timestamp');
    },
  );

  test('accepts several space-separated signatures when one matches', () => {
    const wrong = sign(otherKey, MSG_ID, TIMESTAMP, PAYLOAD);
    const signature = `v2,${EXPECTED.slice(3)} ${wrong} ${EXPECTED} garbage`;
    expect(verify([key], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBeUndefined();
  });

  test('rejects several space-separated signatures when none matches', () => {
    const signature = `${sign(otherKey, MSG_ID, TIMESTAMP, PAYLOAD)} v2,${EXPECTED.slice(3)}`;
    expect(verify([key], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
  });

  describe('rotation: two keys', () => {
    test('a receiver holding old and new key accepts a request signed with either', () => {
      const byNew = { ...validInput(), signature: sign(otherKey, MSG_ID, TIMESTAMP, PAYLOAD) };
      expect(verify([key, otherKey], validInput(), TOLERANCE, TIMESTAMP)).toBeUndefined();
      expect(verify([key, otherKey], byNew, TOLERANCE, TIMESTAMP)).toBeUndefined();
      expect(verify([key], byNew, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
    });

    test('a sender signing with both keys is accepted by a receiver holding only one of them', () => {
      const signature = signatureHeader([key, otherKey], MSG_ID, TIMESTAMP, PAYLOAD);
      expect(verify([key], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBeUndefined();
      expect(verify([otherKey], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBeUndefined();
      const third = parseSecret('whsec_' + Buffer.alloc(32, 9).toString('base64'));
      expect(verify([third], { ...validInput(), signature }, TOLERANCE, TIMESTAMP)).toBe('no-matching-signature');
    });
  });

  describe('interoperates with the standardwebhooks package', () => {
    const now = Math.floor(Date.now() / 1000);
    const id = 'evt_interop';
    const body = '{"specversion":"1.0","id":"evt_interop","data":{"n":1}}';

    test('it accepts our header (with both rotation signatures)', () => {
      const headers = {
        'webhook-id': id,
        'webhook-timestamp': String(now),
        'webhook-signature': signatureHeader([otherKey, key], id, now, body),
      };
      expect(new Webhook(SECRET).verify(body, headers)).toEqual(JSON.parse(body));
      expect(new Webhook(OTHER_SECRET).verify(body, headers)).toEqual(JSON.parse(body));
    });

    test('it refuses what we refuse (a changed body)', () => {
      const headers = {
        'webhook-id': id,
        'webhook-timestamp': String(now),
        'webhook-signature': signatureHeader([key], id, now, body),
      };
      expect(() => new Webhook(SECRET).verify(body.replace('1', '2'), headers)).toThrow();
    });

    test('we accept its signature', () => {
      const signature = new Webhook(SECRET).sign(id, new Date(now * 1000), body);
      expect(verify([key], { id, timestamp: String(now), signature, body: Buffer.from(body) }, TOLERANCE)).toBeUndefined();
    });
  });
});

describe('parseSecret', () => {
  test('decodes the base64 after whsec_ into the HMAC key', () => {
    expect(parseSecret(SECRET).equals(Buffer.from(SECRET_BASE64, 'base64'))).toBe(true);
    expect(parseSecret(SECRET)).toHaveLength(24);
  });

  test('accepts padded base64', () => {
    expect(parseSecret('whsec_' + Buffer.from('hello').toString('base64'))).toEqual(Buffer.from('hello'));
  });

  const secretPart = 'c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==';
  test.each([
    ['a missing prefix', secretPart],
    ['another prefix', `whsek_${secretPart}`],
    ['bad base64', `whsec_${secretPart.slice(0, -2)}!@`],
    ['base64 with a space', `whsec_${secretPart.slice(0, 8)} ${secretPart.slice(8)}`],
    ['an empty base64 part', 'whsec_'],
    ['an empty string', ''],
  ])('rejects %s with a SecretFormatError that does not echo the secret', (_what, secret) => {
    let caught: unknown;
    try {
      parseSecret(secret);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SecretFormatError);
    const message = (caught as Error).message;
    expect(message).toMatch(/whsec_|base64/);
    if (secret.length > 6) expect(message).not.toContain(secret);
    expect(message).not.toContain(secretPart.slice(0, 12));
    expect(String(caught)).not.toContain(secretPart.slice(0, 12));
  });

  test('rejects a non-string without throwing a TypeError', () => {
    expect(() => parseSecret(undefined as unknown as string)).toThrow(SecretFormatError);
  });
});
