/**
 * Certificates for tests, made with the `openssl` command at test time rather than kept
 * in the repository: no private keys under version control, nothing that expires, and a
 * fresh authority per run. Needs `openssl` on the PATH (Debian package `openssl`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  /** The cluster's certificate authority (PEM). */
  readonly ca: string;
  /** A member certificate signed by `ca`, valid for 127.0.0.1 and localhost, server and client use. */
  readonly member: TestCertificate;
  /** The same kind of certificate, signed by an authority the cluster does not trust. */
  readonly foreign: TestCertificate;
}

let cached: TestPki | null = null;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function authority(dir: string, name: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '3650',
      '-keyout',
      `${name}-ca.key`,
      '-out',
      `${name}-ca.crt`,
      '-subj',
      `/CN=quorate test ${name} CA`,
    ],
    dir,
  );
}

function leaf(dir: string, ca: string, name: string): TestCertificate {
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=quorate ${name}`,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}-ca.crt`,
      '-CAkey',
      `${ca}-ca.key`,
      '-CAcreateserial',
      '-days',
      '3650',
      '-out',
      `${name}.crt`,
      '-extfile',
      'leaf.ext',
    ],
    dir,
  );
  return {
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

/** A certificate authority, a member certificate and a foreign one; made once per process. */
export function testPki(): TestPki {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'quorate-pki-'));
  try {
    writeFileSync(
      join(dir, 'leaf.ext'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
    );
    authority(dir, 'cluster');
    authority(dir, 'rogue');
    const member = leaf(dir, 'cluster', 'member');
    const foreign = leaf(dir, 'rogue', 'foreign');
    cached = { ca: readFileSync(join(dir, 'cluster-ca.crt'), 'utf8'), member, foreign };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
