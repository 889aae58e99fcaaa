/**
 * The deployment files under deploy/, checked without a container engine or a cluster:
 * - the Kubernetes manifests validate against the Kubernetes schemas and agree with each
 *   other (selectors, headless Service, probes, config);
 * - the configuration each StatefulSet pod would get (the ConfigMap's YAML, the container's
 *   args and environment, its own pod name) starts real members on loopback, one loopback
 *   address per pod in place of its DNS name; they elect a leader, replicate a write, and
 *   stop cleanly on SIGTERM as the kubelet stops them;
 * - the container recipe's command (ENTRYPOINT + CMD, as its non-root USER, with its ENV,
 *   over the directory its build stage's `pnpm deploy` makes) runs until /health/ready
 *   answers 200.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { QuorateClient } from '@quorate/client';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { waitFor } from './helpers.js';

const root = resolve(import.meta.dirname, '../../..');
const nodeBin = join(root, 'apps', 'node', 'bin', 'quorate.js');
const work = mkdtempSync(join(tmpdir(), 'quorate-deploy-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked by schema, then read loosely
type Doc = any;
const manifests: Doc[] = parseAllDocuments(
  readFileSync(join(root, 'deploy', 'kubernetes', 'quorate.yaml'), 'utf8'),
).map((d) => d.toJS());
const byKind = (kind: string): Doc[] => manifests.filter((d) => d.kind === kind);
const models: Record<string, { new (data: Doc): { validate(): void } }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/** Every process started here, stopped after each test whatever happened. */
const procs: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => stop(p, 10_000)));
});

function stop(p: ChildProcess, graceMs: number): Promise<number | null> {
  return new Promise((done) => {
    if (p.exitCode !== null || p.signalCode !== null) return done(p.exitCode);
    const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      done(code);
    });
    p.kill('SIGTERM');
  });
}

/** The environment a process gets: no QUORATE_* of the test's own, then `env`. */
function cleanEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('QUORATE_')) out[k] = v;
  return { ...out, ...env };
}

function start(cmd: string, args: string[], env: Record<string, string>, cwd: string): ChildProcess {
  const p = spawn(cmd, args, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  p.stdout?.on('data', keep);
  p.stderr?.on('data', keep);
  Object.defineProperty(p, 'output', { get: () => out });
  procs.push(p);
  return p;
}

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

describe('Kubernetes manifests', () => {
  it('validate against the Kubernetes schemas (and the validator bites)', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(5);
    for (const d of manifests) {
      const M = models[`${d.apiVersion}/${d.kind}`];
      expect(M, `a schema for ${d.apiVersion} ${d.kind}`).toBeDefined();
      new M!(d).validate();
    }
    const broken = structuredClone(byKind('StatefulSet')[0]);
    broken.spec.replicas = 'three';
    expect(() => new StatefulSet(broken).validate()).toThrow(/replicas/);
  });

  it('agree with each other: selectors, headless Service, probes, config, identities', () => {
    const sts = byKind('StatefulSet')[0];
    const labels = sts.spec.template.metadata.labels;
    expect(sts.spec.selector.matchLabels).toEqual(labels);
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    const headless = byKind('Service').find((s) => s.metadata.name === sts.spec.serviceName);
    expect(headless?.spec.clusterIP).toBe('None');
    expect(headless?.spec.publishNotReadyAddresses).toBe(true);
    for (const s of byKind('Service')) expect(s.spec.selector).toEqual(labels);
    expect(byKind('PodDisruptionBudget')[0].spec.selector.matchLabels).toEqual(labels);
    const c = sts.spec.template.spec.containers[0];
    const http = c.ports.find((p: Doc) => p.name === 'http');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    expect(sts.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    const cmName = sts.spec.template.spec.volumes.find((v: Doc) => v.configMap).configMap.name;
    const config = parse(byKind('ConfigMap').find((m) => m.metadata.name === cmName).data['quorate.yaml']);
    const pods = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
    expect(config.members.map((m: Doc) => m.id)).toEqual(pods);
    for (const m of config.members) {
      expect(m.peerAddress).toBe(`${m.id}.${sts.spec.serviceName}:7001`);
      expect(m.clientAddress).toBe(`http://${m.id}.${sts.spec.serviceName}:${http.containerPort}`);
    }
  });

  it("each pod's configuration starts a real member; they elect, replicate, and stop on SIGTERM", async () => {
    const sts = byKind('StatefulSet')[0];
    const svc = sts.spec.serviceName;
    const c = sts.spec.template.spec.containers[0];
    const secret = `test-${process.pid}-${Date.now()}-a-long-random-cluster-secret`;
    const cm = byKind('ConfigMap').find(
      (m) => m.metadata.name === sts.spec.template.spec.volumes[0].configMap.name,
    );
    const mount = c.volumeMounts.find((v: Doc) => v.name === 'config').mountPath as string;
    const dataMount = c.volumeMounts.find((v: Doc) => v.name === 'data').mountPath as string;
    const pods = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
    // Each pod's DNS name and its 0.0.0.0 listeners become one loopback address of its own.
    const ip = (i: number) => `127.0.0.${11 + i}`;
    const toLoopback = (text: string, i: number) => {
      let t = text;
      pods.forEach((pod, j) => {
        t = t.split(`${pod}.${svc}`).join(ip(j));
      });
      return t.split('0.0.0.0').join(ip(i));
    };
    const clientUrls: string[] = [];
    for (const [i, pod] of pods.entries()) {
      const dir = join(work, pod);
      mkdirSync(join(dir, 'config'), { recursive: true });
      for (const [file, text] of Object.entries(cm.data as Record<string, string>)) {
        writeFileSync(join(dir, 'config', file), toLoopback(text, i));
      }
      const env: Record<string, string> = {};
      for (const e of c.env) {
        if (e.value !== undefined)
          env[e.name] = toLoopback(String(e.value), i).replace(dataMount, join(dir, 'data'));
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = pod;
        else if (e.valueFrom?.secretKeyRef) env[e.name] = secret;
        else throw new Error(`unhandled env ${e.name}`);
      }
      const args = (c.args as string[]).map((a) => a.replace(mount, join(dir, 'config')));
      start(process.execPath, [nodeBin, ...args], env, dir);
      const port = c.ports.find((p: Doc) => p.name === 'http').containerPort;
      clientUrls.push(`http://${ip(i)}:${port}`);
    }
    const readyPath = c.readinessProbe.httpGet.path;
    await waitFor(
      async () => {
        const codes = await Promise.all(clientUrls.map((u) => status(u + readyPath)));
        return codes.every((s) => s === 200) ? codes : null;
      },
      `every pod's ${readyPath} to answer 200`,
      60_000,
    );
    const client = new QuorateClient({ endpoints: clientUrls });
    try {
      await client.put('deploy/check', 'replicated');
      const v = await client.get('deploy/check');
      expect(v?.text()).toBe('replicated');
    } finally {
      await client.close();
    }
    // The kubelet's SIGTERM, within the pod's grace period: each member exits 0.
    const grace = sts.spec.template.spec.terminationGracePeriodSeconds * 1000;
    const codes = await Promise.all(procs.splice(0).map((p) => stop(p, grace)));
    expect(codes).toEqual(pods.map(() => 0));
  }, 180_000);
});

describe('container recipe', () => {
  /** The final stage of the Dockerfile: its ENV, USER, ENTRYPOINT and CMD. */
  function finalStage() {
    const text = readFileSync(join(root, 'deploy', 'container', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    const from = lines.map((l, i) => (/^FROM /.test(l) ? i : -1)).filter((i) => i >= 0);
    const build = lines.slice(from[0]!, from[from.length - 1]!);
    const last = lines.slice(from[from.length - 1]!);
    const env: Record<string, string> = {};
    let user = '';
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    for (const l of last) {
      const [, kw, rest] = /^(\w+)\s+(.*)$/.exec(l.trim())!;
      if (kw === 'ENV') {
        const m = /^(\w+)=(.*)$/.exec(rest!.trim());
        if (m) env[m[1]!] = m[2]!;
      } else if (kw === 'USER') user = rest!.trim();
      else if (kw === 'ENTRYPOINT') entrypoint = JSON.parse(rest!);
      else if (kw === 'CMD') cmd = JSON.parse(rest!);
    }
    const deploy = build.join(' ').match(/pnpm --filter @quorate\/node deploy [^&]*?(\/\S+)\s*$/m);
    return { env, user, entrypoint, cmd, deploy };
  }

  it("runs its command as the recipe's non-root user, with its environment, until /health/ready is 200", async () => {
    const s = finalStage();
    expect(s.user).toMatch(/^\d+:\d+$/);
    expect(s.entrypoint[0]).toBe('node');
    expect(s.deploy, "the build stage's pnpm deploy").not.toBeNull();
    // The build stage's deploy, for real: @quorate/node and its production dependencies.
    const app = join(work, 'app');
    const deployArgs = s
      .deploy![0].replace(/\s*\/\S+\s*$/, '')
      .split(/\s+/)
      .slice(1);
    execFileSync('pnpm', [...deployArgs, app], { cwd: root, stdio: 'pipe', timeout: 300_000 });
    chmodSync(app, 0o755);
    const [uid, gid] = s.user.split(':').map(Number) as [number, number];
    const data = join(work, 'image-data');
    const etc = join(work, 'image-etc');
    mkdirSync(data);
    mkdirSync(etc);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(data, uid, gid);
    chmodSync(etc, 0o755);
    // One member on a loopback address of its own, where the image would have its pod IP.
    const ip = '127.0.0.21';
    writeFileSync(
      join(etc, 'quorate.yaml'),
      `clusterId: image\nnodeId: n1\nmembers:\n  - { id: n1, peerAddress: "${ip}:7001", clientAddress: "http://${ip}:8080" }\n`,
    );
    chmodSync(join(etc, 'quorate.yaml'), 0o644);
    const map = (v: string) =>
      v
        .replace(/^\/app\b/, app)
        .replace('/etc/quorate', etc)
        .replace('/var/lib/quorate', data)
        .replace('0.0.0.0', ip);
    const env = Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, map(v)]));
    const argv = [process.execPath, ...[...s.entrypoint.slice(1), ...s.cmd].map(map)];
    // As the recipe's USER: drop to it when running as root; otherwise this user is already not root.
    const [cmd, ...args] = asRoot
      ? ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...argv]
      : argv;
    const p = start(cmd!, args, env, work);
    await waitFor(
      async () => ((await status(`http://${ip}:8080/health/ready`)) === 200 ? true : null),
      "/health/ready of the image's command",
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; its output:\n${(p as unknown as { output: string }).output}`);
    });
    expect(await status(`http://${ip}:8080/health/live`)).toBe(200);
    expect(await stop(procs.splice(0)[0]!, 10_000)).toBe(0);
  }, 400_000);
});
