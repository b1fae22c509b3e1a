import type { EventBus } from '../bus.js';
import type { EmitReceipt, EmittableType, EventRegistry, PayloadOf } from '../types.js';

/** One event a bus emitted (its `emit` resolved: validated and recorded for delivery). */
export interface RecordedEmit<Data = unknown> extends EmitReceipt {
  /** The payload as it went on the wire (a JSON copy: later changes to your object do not show here). */
  data: Data;
}

/** What `recordEmits(bus)` returns: the events that bus emitted, in order. */
export interface EmitRecorder<Events extends object = EventRegistry> {
  /** Every recorded event, or those of one type: `expect(recorder.emitted('user-created')).toHaveLength(1)`. */
  emitted(): RecordedEmit[];
  emitted<T extends EmittableType<Events>>(type: T): RecordedEmit<PayloadOf<Events, T>>[];
  /** Forgets what was recorded so far (e.g. in `beforeEach`). */
  clear(): void;
}

/** An emit with its place in the order of every recorded emit (the network merges several buses). */
export interface SequencedEmit extends RecordedEmit {
  sequence: number;
}

let sequence = 0;
const recorders = new WeakMap<object, { list: SequencedEmit[]; recorder: EmitRecorder<object> }>();

type EmitFunction = (...args: unknown[]) => Promise<EmitReceipt>;

/**
 * Records what `bus` emits, for assertions. Wraps that one bus instance's `emit` (EventBus itself
 * keeps no test state) and gives that instance `bus.emitted(type?)` too; calling it again for the
 * same bus returns the same recorder. Emits that
 * reject (undeclared type, invalid payload, closed bus) are not recorded.
 *
 * @example
 * const recorder = recordEmits(users);
 * await users.emit('user-created', { user_id: 'u1', email: 'ada@example.com' });
 * expect(recorder.emitted('user-created')).toHaveLength(1);
 */
export function recordEmits<Events extends object>(bus: EventBus<Events>): EmitRecorder<Events> {
  return entryFor(bus).recorder as unknown as EmitRecorder<Events>;
}

/** The recorded emits of `bus` with their global order (the network's view). */
export function sequencedEmits(bus: object): SequencedEmit[] {
  return entryFor(bus).list;
}

function entryFor(bus: object): { list: SequencedEmit[]; recorder: EmitRecorder<object> } {
  let entry = recorders.get(bus);
  if (entry) return entry;
  const list: SequencedEmit[] = [];
  const target = bus as unknown as { emit: EmitFunction };
  const original = target.emit;
  const recording: EmitFunction = async (...args) => {
    const receipt = await original.apply(bus, args);
    const data: unknown = args[1] === undefined ? undefined : JSON.parse(JSON.stringify(args[1]));
    list.push({ ...receipt, targets: [...receipt.targets], data, sequence: (sequence += 1) });
    return receipt;
  };
  Object.defineProperty(bus, 'emit', { value: recording, configurable: true, writable: true, enumerable: false });
  const recorder: EmitRecorder<object> = {
    emitted: (type?: string) => list.filter((e) => type === undefined || e.type === type).map(withoutSequence),
    clear: () => {
      list.length = 0;
    },
  } as EmitRecorder<object>;
  // Also as `bus.emitted(type?)` on that instance (the test kit's buses; EventBus itself has none).
  if (!('emitted' in bus)) {
    Object.defineProperty(bus, 'emitted', { value: recorder.emitted, configurable: true, writable: true, enumerable: false });
  }
  entry = { list, recorder };
  recorders.set(bus, entry);
  return entry;
}

function withoutSequence({ sequence: _sequence, ...emit }: SequencedEmit): RecordedEmit {
  return emit;
}
