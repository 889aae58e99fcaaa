/**
 * A private network for a spawned cluster: each node in a network namespace of its own,
 * joined by a veth pair to one bridge in the load generator's namespace (which holds the
 * bridge's address, so the clients reach every node, and the nodes reach each other only
 * across the bridge). Faults are nftables rules inside each node's namespace: a cut link
 * drops the packets of one direction between two nodes; loss drops a share of the packets
 * between nodes at random. Every rule counts what it dropped, so a fault proves it bit.
 *
 * Needs root (CAP_NET_ADMIN) and the `ip` and `nft` commands; `NetLab.available()` says
 * what is missing. Everything created is removed by `destroy()`, and names carry the
 * creating process's pid so a crashed run's leftovers can be told apart and swept.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function sh(cmd: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run(cmd, args, { timeout: 10_000 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
    p.stdin?.end(input);
  });
}

/** Why the network families cannot run here, or null when they can. */
export async function netlabUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces and nftables need root';
  for (const [cmd, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
  ] as const) {
    try {
      await run(cmd, ['-V']);
    } catch {
      return `the \`${cmd}\` command is missing (Debian package ${pkg})`;
    }
  }
  return null;
}

/** Whether this kernel has the netem queueing discipline (some VM kernels are built without it). */
export async function hasNetem(ns: string): Promise<boolean> {
  try {
    await sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    await sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'lo', 'root']);
    return true;
  } catch {
    return false;
  }
}

let labs = 0;

export interface LabHost {
  readonly id: string;
  readonly ns: string;
  readonly ip: string;
}

/** The network quality applied to traffic between nodes. */
export interface Quality {
  /** Share of packets dropped, 0..1. */
  loss: number;
  /** With netem: one-way delay and its jitter, ms. */
  delayMs?: number;
  jitterMs?: number;
  /** With netem: share of packets duplicated and reordered, 0..1. */
  duplicate?: number;
  reorder?: number;
}

export class NetLab {
  readonly hosts: LabHost[];
  /** The bridge's own address: where the load generator's packets come from. */
  readonly gateway: string;
  private readonly bridge: string;
  /** For each host: the hosts whose packets to it are dropped. */
  private readonly cutFrom = new Map<string, Set<string>>();
  private readonly quality = new Map<string, Quality>();
  private destroyed = false;
  netem = false;

  private constructor(
    readonly tag: string,
    subnet: string,
    ids: string[],
  ) {
    this.bridge = `qb${tag}`;
    this.gateway = `${subnet}.254`;
    this.hosts = ids.map((id, i) => ({ id, ns: `q${tag}-${id}`, ip: `${subnet}.${i + 1}` }));
    for (const h of this.hosts) this.cutFrom.set(h.id, new Set());
  }

  /** A bridge and one namespace per id, each with its address and a loopback; no rules yet. */
  static async create(ids: string[]): Promise<NetLab> {
    const why = await netlabUnavailable();
    if (why) throw new Error(`cannot build the nemesis network: ${why}`);
    await sweepStale();
    // The creating process's pid in every name: leftovers of a dead run are told apart.
    const tag = `${process.pid.toString(36)}x${(labs++).toString(36)}`;
    const subnet = await freeSubnet();
    const lab = new NetLab(tag, subnet, ids);
    try {
      await sh('ip', ['link', 'add', lab.bridge, 'type', 'bridge']);
      await sh('ip', ['addr', 'add', `${lab.gateway}/24`, 'dev', lab.bridge]);
      await sh('ip', ['link', 'set', lab.bridge, 'up']);
      for (const [i, h] of lab.hosts.entries()) {
        const outer = `qv${tag}${i}`;
        await sh('ip', ['netns', 'add', h.ns]);
        await sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
        await sh('ip', ['link', 'set', outer, 'master', lab.bridge]);
        await sh('ip', ['link', 'set', outer, 'up']);
        await lab.exec(h, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
        await lab.exec(h, 'ip', ['link', 'set', 'eth0', 'up']);
        await lab.exec(h, 'ip', ['link', 'set', 'lo', 'up']);
        await lab.applyRules(h);
      }
      lab.netem = await hasNetem(lab.hosts[0]!.ns);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  host(id: string): LabHost {
    const h = this.hosts.find((x) => x.id === id);
    if (!h) throw new Error(`no host ${id} in the lab`);
    return h;
  }

  /** The command prefix that runs a program inside a host's namespace (it keeps the pid). */
  prefix(id: string): string[] {
    return ['ip', 'netns', 'exec', this.host(id).ns];
  }

  private exec(h: LabHost, cmd: string, args: string[], input?: string): Promise<string> {
    return sh('ip', ['netns', 'exec', h.ns, cmd, ...args], input);
  }

  /**
   * Drop every packet from `from` to `to` (one direction). Both directions: call twice.
   * Rules go on both ends (output of `from`, input of `to`), so a cut is clean either way.
   */
  async cut(from: string, to: string): Promise<void> {
    this.cutFrom.get(to)!.add(from);
    await Promise.all([this.applyRules(this.host(from)), this.applyRules(this.host(to))]);
  }

  /** Split the hosts into groups that cannot reach each other (both directions). */
  async partition(groups: string[][]): Promise<void> {
    for (const a of groups)
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cutFrom.get(y)!.add(x);
      }
    await Promise.all(this.hosts.map((h) => this.applyRules(h)));
  }

  /** Apply a network quality to packets between nodes (not to the clients' packets). */
  async degrade(q: Quality): Promise<void> {
    for (const h of this.hosts) this.quality.set(h.id, q);
    await Promise.all(this.hosts.map((h) => this.applyRules(h)));
    if (this.netem && (q.delayMs || q.duplicate || q.reorder)) {
      const args = ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem'];
      if (q.delayMs) args.push('delay', `${q.delayMs}ms`, `${q.jitterMs ?? 0}ms`);
      if (q.duplicate) args.push('duplicate', `${q.duplicate * 100}%`);
      if (q.reorder && q.delayMs) args.push('reorder', `${q.reorder * 100}%`);
      await Promise.all(this.hosts.map((h) => this.exec(h, 'tc', args)));
    }
  }

  /** Every link whole again, no loss, no netem. */
  async heal(): Promise<void> {
    for (const s of this.cutFrom.values()) s.clear();
    const hadQuality = this.quality.size > 0;
    this.quality.clear();
    await Promise.all(this.hosts.map((h) => this.applyRules(h)));
    if (hadQuality && this.netem)
      await Promise.all(
        this.hosts.map((h) => this.exec(h, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => '')),
      );
  }

  /** Packets the lab's rules dropped so far, per host (cuts and loss together). */
  async dropped(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await Promise.all(
      this.hosts.map(async (h) => {
        const text = await this.exec(h, 'nft', ['list', 'table', 'inet', 'nemesis']);
        let n = 0;
        for (const m of text.matchAll(/counter packets (\d+)/g)) n += Number(m[1]);
        out.set(h.id, n);
      }),
    );
    return out;
  }

  /**
   * Rewrite a host's table from the lab's state. Each rule has a counter; the table is
   * replaced as a whole in one nft transaction (atomic: no moment without the rules).
   * Counters restart with each rewrite, so `dropped()` is read before a heal.
   */
  private async applyRules(h: LabHost): Promise<void> {
    const cutIn = [...this.cutFrom.get(h.id)!].map((id) => this.host(id).ip);
    const cutOut = this.hosts.filter((o) => this.cutFrom.get(o.id)!.has(h.id)).map((o) => o.ip);
    const peers = this.hosts.filter((o) => o !== h).map((o) => o.ip);
    const q = this.quality.get(h.id);
    const lines = [
      'table inet nemesis {',
      '  chain input {',
      '    type filter hook input priority -10; policy accept;',
      ...(cutIn.length ? [`    ip saddr { ${cutIn.join(', ')} } counter drop`] : []),
      ...(q && q.loss > 0
        ? [
            `    ip saddr { ${peers.join(', ')} } numgen random mod 1000 < ${Math.round(q.loss * 1000)} counter drop`,
          ]
        : []),
      '  }',
      '  chain output {',
      '    type filter hook output priority -10; policy accept;',
      ...(cutOut.length ? [`    ip daddr { ${cutOut.join(', ')} } counter drop`] : []),
      '  }',
      '}',
    ];
    // Create-then-delete-then-create in one transaction: replaces the table atomically.
    const script = `table inet nemesis {}\ndelete table inet nemesis\n${lines.join('\n')}\n`;
    await this.exec(h, 'nft', ['-f', '-'], script);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of this.hosts) await sh('ip', ['netns', 'del', h.ns]).catch(() => '');
    await sh('ip', ['link', 'del', this.bridge]).catch(() => '');
  }
}

/** Subnets this process has handed out (two labs created at once must not race for one). */
const taken = new Set<string>();

/** A 10.213.x.0/24 no interface here uses. */
async function freeSubnet(): Promise<string> {
  const used = await sh('ip', ['-4', '-o', 'addr', 'show']);
  const start = process.pid % 250;
  for (let k = 0; k < 250; k++) {
    const s = `10.213.${(start + k) % 250}`;
    if (!used.includes(` ${s}.`) && !taken.has(s)) {
      taken.add(s);
      return s;
    }
  }
  throw new Error('no free 10.213.x.0/24 subnet for the nemesis network');
}

/** Whether a process with this pid is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the namespaces and links of labs whose creating process is gone (a run killed
 * before it could clean up): names are `q<pid>x<n>-<id>`, `qb<pid>x<n>`, `qv<pid>x<n><i>`.
 */
export async function sweepStale(): Promise<void> {
  const dead = (tag: string) => {
    const pid = Number.parseInt(tag.split('x')[0]!, 36);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid);
  };
  const nss = await sh('ip', ['netns', 'list']).catch(() => '');
  for (const line of nss.split('\n')) {
    const m = /^q([0-9a-z]+x[0-9a-z]+)-\S+/.exec(line);
    if (m && dead(m[1]!)) await sh('ip', ['netns', 'del', m[0]]).catch(() => '');
  }
  const links = await sh('ip', ['-o', 'link', 'show']).catch(() => '');
  for (const m of links.matchAll(/^\d+: (q[bv]([0-9a-z]+x[0-9a-z]+?)\d*)[@:]/gm))
    if (dead(m[2]!)) await sh('ip', ['link', 'del', m[1]!]).catch(() => '');
}
