import net from 'node:net';

/** What a server answered on a raw socket. */
export interface RawAnswer {
  status: number;
  /** Lower-cased header names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 request over a raw TCP socket, written by hand, so a test decides exactly which
 * bytes are sent and when (headers only, part of a body, nothing more). `answer` resolves with
 * the first response; `closed` when the server closed the connection.
 */
export interface RawConnection {
  socket: net.Socket;
  answer: Promise<RawAnswer>;
  closed: Promise<void>;
  /** Whether the server closed the connection (so far). */
  isClosed(): boolean;
  write(bytes: string | Buffer): void;
  destroy(): void;
}

/** Opens a connection to 127.0.0.1:`port` and writes the request line and `headers` (nothing else). */
export function openRawRequest(port: number, path: string, headers: Record<string, string | string[]>): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let closedFlag = false;
    let settle!: (answer: RawAnswer) => void;
    let fail!: (error: Error) => void;
    const answer = new Promise<RawAnswer>((res, rej) => {
      settle = res;
      fail = rej;
    });
    answer.catch(() => undefined);
    const closed = new Promise<void>((res) => socket.on('close', () => res()));
    socket.on('close', () => {
      closedFlag = true;
      fail(new Error('connection closed without a complete response'));
    });
    socket.on('error', () => undefined); // EPIPE/ECONNRESET after the server closed: the answer says what happened
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseResponse(received);
      if (parsed) settle(parsed);
    });
    socket.once('connect', () => {
      const lines = [`POST ${path} HTTP/1.1`, 'host: 127.0.0.1'];
      for (const [name, value] of Object.entries(headers)) {
        for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      resolve({
        socket,
        answer,
        closed,
        isClosed: () => closedFlag,
        write: (bytes) => {
          if (!socket.destroyed) socket.write(bytes);
        },
        destroy: () => socket.destroy(),
      });
    });
    socket.once('error', reject);
  });
}

function parseResponse(bytes: Buffer): RawAnswer | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const body = bytes.subarray(end + 4);
  if (body.length < length) return undefined;
  return { status: Number(statusLine!.split(' ')[1]), headers, body: body.subarray(0, length).toString('utf8') };
}
