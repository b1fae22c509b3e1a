/**
 * Baseline: Moleculer over NATS. Each target is a service (`target<i>`) in its own process whose
 * event handler takes the event; the sender's broker `emit`s to the run's service groups (balanced
 * events: each group gets one copy). One broker per process, kept for the whole bench, in a
 * namespace of this bench run's own.
 */
import { type Context, ServiceBroker } from 'moleculer';
import type { E2EPayload } from './event.js';
import { benchId, type Emitter, NATS_URL, type ReceiverSide, type Sink } from './system.js';

const EVENT = 'user.created';
let senderBroker: Promise<ServiceBroker> | undefined;

function broker(nodeID: string): ServiceBroker {
  return new ServiceBroker({ namespace: benchId(), nodeID: `${nodeID}-${process.pid}`, transporter: NATS_URL, logger: false });
}

export async function receiver(_system: string, index: number, sink: Sink): Promise<ReceiverSide> {
  const node = broker(`target${index}`);
  node.createService({
    name: `target${index}`,
    events: {
      [EVENT]: (ctx: Context<E2EPayload>) => sink(ctx.params),
    },
  });
  await node.start();
  return { address: `target${index}`, close: () => node.stop() };
}

export async function sender(_system: string, addresses: string[]): Promise<Emitter> {
  senderBroker ??= (async () => {
    const node = broker('sender');
    await node.start();
    return node;
  })();
  const node = await senderBroker;
  await node.waitForServices(addresses, 10_000, 50);
  return {
    emit: (data) => node.emit(EVENT, data, addresses),
    // The broker stays for the next runs (a new node would have to be discovered again).
    close: async () => {},
  };
}
