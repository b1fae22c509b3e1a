import type { Logger } from 'winston';
import { createNodeHandler } from '../../src/adapters/node.js';
import { RouteTable } from '../../src/adapters/routes.js';
import type { Catalog } from '../../src/catalog.js';
import { Telemetry } from '../../src/observe/telemetry.js';
import { parseSecret } from '../../src/protocol/signature.js';
import type { InboxStore } from '../../src/receive/inbox-store.js';
import { Receiver } from '../../src/receive/receiver.js';
import { startServer, type TestServer } from './server.js';

const BODY_LIMIT = 1024 * 1024;

/**
 * The `billing` service's Receiver on `catalog` and `inbox` (the bus's defaults, telemetry off,
 * `Retry-After: 7`), behind a real node:http server at `/events`, for tests of the receiver alone.
 */
export function startReceiverServer(o: { catalog: Catalog; inbox: InboxStore; logger: Logger; secret: string }): Promise<TestServer> {
  const receiver = new Receiver({
    catalog: o.catalog,
    inbox: o.inbox,
    logger: o.logger,
    telemetry: Telemetry.off(o.logger),
    keys: [parseSecret(o.secret)],
    toleranceSeconds: 300,
    bodyLimitBytes: BODY_LIMIT,
    bodyTimeoutMs: 10_000,
    bodyStartTimeoutMs: 2_000,
    maxUnverifiedBytes: 32 * 1024 * 1024,
    retryAfterSeconds: 7,
    maxUnrecorded: 100,
    service: 'billing',
  });
  return startServer(createNodeHandler(receiver, '/events', BODY_LIMIT, new RouteTable()));
}
