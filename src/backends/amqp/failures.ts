import { ConfigError } from '../../errors/index.js';

/**
 * What a RabbitMQ failure means for whoever fixes it: amqplib's messages name neither the cause
 * ("Expected ConnectionOpenOk; got <ConnectionClose channel:0>" for a vhost that does not exist)
 * nor the setting. Never echoes the password.
 */
export interface ConnectFailure {
  message: string;
  /** Retrying will not help (credentials, vhost): someone must change the URL or the broker. */
  permanent: boolean;
}

/** The cause of a failed connection to `url`, and the variable to fix. */
export function describeConnectFailure(error: unknown, url: string): ConnectFailure {
  const text = (error as Error)?.message ?? String(error);
  const code = (error as NodeJS.ErrnoException)?.code;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const user = decodeURIComponent(parsed?.username ?? '') || 'guest';
  const vhost = decodeURIComponent(parsed?.pathname.slice(1) ?? '') || '/';
  const where = parsed ? `${parsed.hostname}:${parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)}` : 'the broker';
  if (/ACCESS[-_]REFUSED|\b403\b/.test(text)) {
    return { permanent: true, message: `the broker at ${where} refused the credentials of user "${user}": check the user and password in EVENTS_BROKER_URL` };
  }
  if (/ConnectionOpenOk|NOT[-_]ALLOWED|\b530\b/.test(text)) {
    return {
      permanent: true,
      message: `the broker at ${where} has no virtual host "${vhost}", or user "${user}" may not use it: check the vhost (the path of EVENTS_BROKER_URL; none means "/") and the user's permissions (rabbitmqctl list_vhosts, list_permissions)`,
    };
  }
  if (code !== undefined && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET)$/.test(code)) {
    return { permanent: false, message: `the broker at ${where} is unreachable (${code}): check the host and port in EVENTS_BROKER_URL, and that RabbitMQ runs` };
  }
  return { permanent: false, message: `${text} (EVENTS_BROKER_URL: ${where})` };
}

/**
 * A queue that exists with other arguments than the library declares (PRECONDITION_FAILED, 406):
 * no retry fixes that. Undefined for any other error.
 */
export function queueMismatch(error: unknown): ConfigError | undefined {
  if ((error as { code?: unknown })?.code !== 406) return undefined;
  const text = (error as Error).message;
  const detail = /PRECONDITION_FAILED - (.*?)"?$/.exec(text)?.[1] ?? text;
  const queue = /for queue '([^']*)'/.exec(detail)?.[1];
  return new ConfigError(
    `a queue exists with other arguments than this library declares (${detail}): delete the queue${queue ? ` "${queue}"` : ''} ` +
      '(rabbitmqctl delete_queue; move its messages first) so that it is declared again, or run the services with another EVENTS_BROKER_PREFIX',
    { variable: 'EVENTS_BROKER_PREFIX', cause: error },
  );
}
