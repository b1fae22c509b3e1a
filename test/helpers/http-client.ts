import http from 'node:http';

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The response body as text. */
  text: string;
  /** The response body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * Sends one request with exactly the headers given (no content type is added) over a fresh
 * connection, and reads the whole answer. A connection closed after the answer is fine.
 */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<ClientResponse> {
  const { method = 'POST', headers = {}, body } = options;
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    // The server may answer (413) and close before reading everything we send.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    req.on('close', () => {
      if (!answered) reject(new Error(`${method} ${url}: connection closed without a response`));
    });
    req.end(body);
  });
}

/** What `post` read: the status, the headers (fetch's `Headers`), and the JSON body (`{}` when empty). */
export interface PostAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs a signed request (see signing.ts) to `url`. */
export async function post(url: string, signed: { headers: Record<string, string>; body: string }): Promise<PostAnswer> {
  const res = await request(url, { headers: signed.headers, body: signed.body });
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
  }
  return { status: res.status, headers, body: res.text ? (JSON.parse(res.text) as Record<string, unknown>) : {} };
}
