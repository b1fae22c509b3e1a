import { describeWithService } from './describe-with-service.js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

/**
 * librdkafka's mock cluster (Debian's kcat), one per test file: it speaks the Kafka protocol on
 * 127.0.0.1 and keeps its data in memory. In CI (`CI=true`) a missing kcat fails the file;
 * elsewhere the file's tests are skipped with a message.
 */

export function kcatAvailable(): boolean {
  try {
    execFileSync('kcat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `describe`, or a skipped describe with a message when kcat is missing outside CI. */
export function describeWithKafka(name: string, body: () => void): void {
  describeWithService(name, body, {
    available: kcatAvailable,
    needs: 'needs kcat for the Kafka mock cluster (.ci/run installs it)',
    missing: 'kcat is not installed',
    fix: "apt-get install -y kcat runs librdkafka's mock Kafka cluster",
  });
}

export interface MockCluster {
  /** `host:port,host:port,host:port` */
  bootstrap: string;
  /** `kafka://…` for the broker option. */
  url: string;
  stop(): Promise<void>;
}

/** Starts a 3-broker mock cluster; resolves with its bootstrap address once it listens. */
export function startMockCluster(brokers = 3): Promise<MockCluster> {
  const child: ChildProcess = spawn(
    'kcat',
    ['-b', 'dummy:9092', '-C', '-t', '_keepalive', '-X', `test.mock.num.brokers=${brokers}`, '-X', 'debug=mock', '-q', '-u'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat did not report a mock cluster: ${text.slice(0, 500)}`));
    }, 10_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (text.length < 100_000) text += chunk.toString('utf8');
      const match = /bootstrap\.servers=(\S+)/.exec(text);
      if (!match) return;
      clearTimeout(timer);
      child.stderr!.removeAllListeners('data');
      child.stderr!.resume();
      const bootstrap = match[1]!;
      resolve({
        bootstrap,
        url: `kafka://${bootstrap}`,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGKILL');
          }),
      });
    });
  });
}
