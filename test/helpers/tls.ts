import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { TempDir } from './temp-dir.js';

/** A certificate and its key, as PEM text and as the files that hold them. */
export interface Issued {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/**
 * A private PKI made with the openssl CLI in `dir`, as a company runs one: `ca(name)` makes a CA,
 * `issue(ca, name)` a certificate it signs, for 127.0.0.1 and localhost (server and client use).
 */
export function testPki(dir: TempDir): { ca(name: string): Issued; issue(ca: Issued, name: string): Issued } {
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const read = (name: string): Issued => {
    const [certFile, keyFile] = [dir.file(`${name}.crt`), dir.file(`${name}.key`)];
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
  };
  let serial = 1;
  return {
    ca(name) {
      openssl('req', '-x509', ...ecKey, '-keyout', dir.file(`${name}.key`), '-out', dir.file(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`);
      return read(name);
    },
    issue(ca, name) {
      const extensions = dir.file(`${name}.ext`);
      writeFileSync(extensions, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
      openssl('req', ...ecKey, '-keyout', dir.file(`${name}.key`), '-out', dir.file(`${name}.csr`), '-subj', `/CN=${name}`);
      openssl('x509', '-req', '-in', dir.file(`${name}.csr`), '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String((serial += 1)), '-days', '2', '-extfile', extensions, '-out', dir.file(`${name}.crt`));
      return read(name);
    },
  };
}
