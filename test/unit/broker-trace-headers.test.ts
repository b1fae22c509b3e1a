import { envelopeOf } from '../../src/backends/amqp/envelope.js';
import { recordOf } from '../../src/backends/kafka/envelope.js';
import { parseSecret } from '../../src/protocol/signature.js';
import type { Delivery } from '../../src/send/transport.js';
import { newSecret } from '../helpers/signing.js';

/** Issue 11: the trace context crosses the brokers in their own headers too, as it does over HTTP. */

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function delivery(trace: Partial<Pick<Delivery, 'traceparent' | 'tracestate'>>): Delivery {
  const body = JSON.stringify({ specversion: '1.0', id: 'e1', source: 'users', type: 'user-created', data: {} });
  return {
    eventId: 'e1',
    type: 'user-created',
    source: 'users',
    target: { name: 'payments', url: '', keys: [parseSecret(newSecret())], batch: false, receipt: true },
    body,
    previousAttempts: 0,
    ...trace,
  };
}

describe('trace context in broker headers', () => {
  it('RabbitMQ: traceparent/tracestate and the CloudEvents AMQP binding headers', () => {
    const { headers } = envelopeOf(delivery({ traceparent: TRACEPARENT, tracestate: 'vendor=1' }));
    expect(headers).toMatchObject({
      traceparent: TRACEPARENT,
      tracestate: 'vendor=1',
      cloudEvents_traceparent: TRACEPARENT,
      cloudEvents_tracestate: 'vendor=1',
    });
  });

  it('Kafka: traceparent/tracestate and the CloudEvents Kafka binding headers', () => {
    const { headers } = recordOf(delivery({ traceparent: TRACEPARENT }));
    expect(headers).toMatchObject({ traceparent: TRACEPARENT, ce_traceparent: TRACEPARENT });
    expect(headers).not.toHaveProperty('tracestate');
  });

  it('no trace context, no trace headers', () => {
    expect(envelopeOf(delivery({})).headers).not.toHaveProperty('traceparent');
    expect(recordOf(delivery({})).headers).not.toHaveProperty('traceparent');
  });
});
