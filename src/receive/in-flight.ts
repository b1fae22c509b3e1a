/** Work in flight (handlers, messages), so that a stop can await it instead of polling a counter. */
export class InFlight {
  private readonly work = new Set<Promise<unknown>>();

  /** Tracks `promise` until it settles; returns it. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.work.add(promise);
    const done = (): void => void this.work.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Resolves once every tracked promise (those tracked meanwhile too) has settled, or at `deadline` (ms since epoch). */
  async settled(deadline: number): Promise<void> {
    while (this.work.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())));
      await Promise.race([Promise.allSettled([...this.work]), late]);
      clearTimeout(timer);
    }
  }
}
