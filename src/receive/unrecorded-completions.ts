/**
 * Handlers that completed while the inbox could not record it, kept in memory (bounded, oldest
 * event forgotten first) so that the redelivery reaching this process records them instead of
 * running them again.
 */
export class UnrecordedCompletions {
  private readonly events = new Map<string, Set<string>>();

  constructor(private readonly maxEvents: number) {}

  has(eventKey: string, handlerKey: string): boolean {
    return this.events.get(eventKey)?.has(handlerKey) ?? false;
  }

  add(eventKey: string, handlerKey: string): void {
    let handlers = this.events.get(eventKey);
    if (!handlers) {
      if (this.events.size >= this.maxEvents) this.events.delete(this.events.keys().next().value!);
      handlers = new Set();
      this.events.set(eventKey, handlers);
    }
    handlers.add(handlerKey);
  }

  /** Forgets `handlerKey` of `eventKey` (its completion is recorded now), or the whole event. */
  delete(eventKey: string, handlerKey?: string): void {
    const handlers = this.events.get(eventKey);
    if (!handlers) return;
    if (handlerKey !== undefined) handlers.delete(handlerKey);
    if (handlerKey === undefined || handlers.size === 0) this.events.delete(eventKey);
  }

  get size(): number {
    return this.events.size;
  }
}
