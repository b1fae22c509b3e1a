/**
 * `npx tsx bench/slow-clients.ts [--connections 1500]`: issue 6 item 2's attack, measured. Each
 * connection declares a body just under the 1 MiB limit with plausible webhook-* headers (a
 * fresh timestamp, a forged signature), sends 1000 KiB of it and stalls. Prints the receiver's
 * RSS before and with every connection open (after --settle seconds), and how each connection was answered.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { ask, forkTs, sleep } from './lib.js';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '1500' }, settle: { type: 'string', default: '5' } } });
const N = Number(values.connections);

async function main(): Promise<void> {
  const child = forkTs('slow-clients-server.ts');
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', resolve as never));
  const before = await ask<{ rssMb: number }>(child, 'rss');
  const statuses = new Map<string, number>();
  const sockets: net.Socket[] = [];
  const chunk = Buffer.alloc(1000 * 1024, 'x');
  for (let i = 0; i < N; i += 1) {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    let answered = false;
    socket.on('data', (data: Buffer) => {
      if (answered) return;
      answered = true;
      const status = data.toString('latin1').split(' ')[1] ?? '?';
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    });
    socket.write(
      `POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/cloudevents+json\r\ncontent-length: ${1024 * 1024 - 1}\r\n` +
        `webhook-id: msg_${i}\r\nwebhook-timestamp: ${Math.floor(Date.now() / 1000)}\r\nwebhook-signature: v1,${Buffer.alloc(32).toString('base64')}\r\n\r\n`,
    );
    socket.write(chunk);
    if (i % 100 === 99) await sleep(50);
  }
  await sleep(Number(values.settle) * 1000); // let the bytes arrive
  const during = await ask<{ rssMb: number }>(child, 'rss');
  const unanswered = N - [...statuses.values()].reduce((a, b) => a + b, 0);
  console.log(`connections=${N} rss before=${before.rssMb} MB with them open=${during.rssMb} MB answers=${JSON.stringify(Object.fromEntries(statuses))} still reading=${unanswered}`);
  for (const socket of sockets) socket.destroy();
  child.kill();
}

void main();
