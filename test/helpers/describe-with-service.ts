/** What a test file needs from the machine, and what to say when it is missing. */
export interface ServiceNeed {
  available: () => boolean;
  /** The failing test's title in CI, e.g. 'needs kcat for the Kafka mock cluster (.ci/run installs it)'. */
  needs: string;
  /** What is missing, e.g. 'kcat is not installed'. */
  missing: string;
  /** How to get it, e.g. 'apt-get install -y kcat'. */
  fix: string;
}

/**
 * `describe` when the service is there; in CI (`CI=true`, where .ci/run provides it) a failing
 * test when it is not, so it never skips there; elsewhere a skipped describe with a message.
 */
export function describeWithService(name: string, body: () => void, need: ServiceNeed): void {
  if (need.available()) {
    describe(name, body);
    return;
  }
  if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => {
      it(need.needs, () => {
        throw new Error(`${need.missing}: ${need.fix}`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${need.missing} (${need.fix})`);
  describe.skip(name, body);
}
