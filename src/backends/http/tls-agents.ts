import type { ConnectionOptions } from 'node:tls';
import type { ResolvedTarget } from '../../config.js';

/**
 * The connection pools (agents) of an HTTP client for targets with TLS settings of their own: one
 * per target, built anew when its TLS files change (rotation). A replaced agent serves what is in
 * flight on it, and is destroyed once its requests have timed out at the latest.
 */
export class TlsAgents<A> {
  private readonly agents = new Map<string, { options: ConnectionOptions; agent: A }>();
  /** Replaced agents, until their timer destroys them. */
  private readonly retiring = new Map<NodeJS.Timeout, A>();

  constructor(
    private readonly o: {
      /** A new agent connecting with `tls`. */
      build: (tls: ConnectionOptions) => A;
      destroy: (agent: A) => unknown;
      /** How long a replaced agent lives on: the client's request timeout. */
      graceMs: number;
    },
  ) {}

  /** The agent for `target`, or undefined for a target without TLS settings (the client's default agent serves it). */
  for(target: ResolvedTarget): A | undefined {
    if (target.tls === undefined) return undefined;
    const options = target.tls.current();
    const entry = this.agents.get(target.name);
    if (entry?.options === options) return entry.agent;
    if (entry) this.retire(entry.agent);
    const agent = this.o.build(options);
    this.agents.set(target.name, { options, agent });
    return agent;
  }

  async close(): Promise<void> {
    for (const timer of this.retiring.keys()) clearTimeout(timer);
    const agents = [...this.retiring.values(), ...[...this.agents.values()].map((entry) => entry.agent)];
    this.retiring.clear();
    this.agents.clear();
    await Promise.all(agents.map((agent) => this.o.destroy(agent)));
  }

  private retire(agent: A): void {
    const timer = setTimeout(() => {
      this.retiring.delete(timer);
      void Promise.resolve(this.o.destroy(agent)).catch(() => undefined);
    }, this.o.graceMs).unref();
    this.retiring.set(timer, agent);
  }
}
