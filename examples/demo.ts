/**
 * The seed scenario, on loopback: users (Express) emits to payments (Express) and orders (Koa).
 * Run with `npm run demo`. Prints what each service received and exits 0.
 * `npm run demo -- --broker amqp://guest:guest@127.0.0.1:5672` runs it over RabbitMQ instead
 * (queues prefixed for this run, removed at the end).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import winston from 'winston';
import { serviceTopology } from '../src/backends/amqp/topology.js';
import { DEFAULTS, type BrokerOptions } from '../src/index.js';
import { createOrdersService } from './orders.js';
import { createPaymentsService } from './payments.js';
import { createUsersService } from './users.js';

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'; // demo only: real services read EVENTS_SECRET
const logger = winston.createLogger({ level: process.env.EVENTS_LOG_LEVEL ?? 'warn', transports: [new winston.transports.Console()] });

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function waitFor(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const brokerUrl = parseArgs({ options: { broker: { type: 'string' } }, strict: true }).values.broker;
const broker: BrokerOptions | undefined = brokerUrl ? { url: brokerUrl, prefix: `events-demo-${process.pid}.` } : undefined;

/** Over RabbitMQ: this run's queues go away with it. */
async function removeQueues(options: BrokerOptions): Promise<void> {
  const { connect } = await import('amqplib');
  const connection = await connect(options.url);
  const channel = await connection.createChannel();
  for (const service of ['payments', 'orders']) {
    const { main, deadLetters, waits } = serviceTopology(options.prefix!, service, DEFAULTS.broker.deliveryLimit, DEFAULTS.broker.retryDelaysMs);
    for (const queue of [main, deadLetters, ...waits.values()]) await channel.deleteQueue(queue.name);
  }
  await connection.close();
}

async function main(): Promise<void> {
  // Over a broker a receiver needs a durable inbox (EVENTS_INBOX_PATH, EVENTS_DATABASE_URL) or this
  // choice: the demo's in-memory inbox forgets at exit, so a message republished later would run again.
  const inbox = broker ? { volatile: true } : undefined;
  const payments = createPaymentsService({ secret, logger, broker, inbox });
  const orders = createOrdersService({ secret, logger, broker, inbox });
  const paymentsServer = await listen(payments.app);
  const ordersServer = await listen(orders.app.callback());

  if (broker) {
    await Promise.all([payments.bus.start(), orders.bus.start()]);
    console.log(`through RabbitMQ ${brokerUrl!.replace(/\/\/[^@/]*@/, '//')} (queues ${broker.prefix}payments, ${broker.prefix}orders)`);
  }
  const users = createUsersService({
    secret,
    logger,
    broker,
    services: { payments: `${paymentsServer.url}/events`, orders: `${ordersServer.url}/events` },
  });
  const usersServer = await listen(users.app);
  console.log(`users    ${usersServer.url}\npayments ${paymentsServer.url}/events\norders   ${ordersServer.url}/events\n`);

  const created: { id: string; email: string }[] = [];
  for (const [name, email] of [['Ada', 'ada@example.com'], ['Linus', 'linus@example.com']]) {
    const res = await fetch(`${usersServer.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, email }),
    });
    created.push((await res.json()) as { id: string; email: string });
    console.log(`POST /users ${email} → ${res.status}`);
  }
  const removed = created[0]!;
  const del = await fetch(`${usersServer.url}/users/${removed.id}`, { method: 'DELETE' });
  console.log(`DELETE /users/${removed.id} → ${del.status}\n`);

  await waitFor('payments', () => payments.received.length === 5);
  await waitFor('orders', () => orders.received.length === 2);

  console.log('payments received:');
  for (const line of payments.received) console.log(`  ${line}`);
  console.log('orders received:');
  for (const line of orders.received) console.log(`  ${line}`);
  console.log(`\npayments now has ${payments.customers.size} customer(s); orders has ${orders.histories.size} history(ies).`);

  await Promise.all([users.bus.close(), payments.bus.close(), orders.bus.close()]);
  for (const { server } of [usersServer, paymentsServer, ordersServer]) server.close();
  if (broker) await removeQueues(broker);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
