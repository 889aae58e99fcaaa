/**
 * Publishing works from day one: every public package packs, installs from its tarball
 * into a project outside the workspace, and imports there — at run time and with types.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publicPackages, root } from './packages.js';

const work = mkdtempSync(join(tmpdir(), 'quorate-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd: string): string => {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
};

describe('packed packages install and import outside the workspace', () => {
  const pkgs = publicPackages();

  it('finds the public packages', () => {
    expect(pkgs.map((p) => p.name)).toContain('@quorate/raft');
    for (const p of pkgs) expect(p.name).toMatch(/^@quorate\//);
  });

  it('packs, installs and imports each one, with types', () => {
    const tarballs = join(work, 'tarballs');
    mkdirSync(tarballs);
    for (const p of pkgs) run('pnpm', ['pack', '--pack-destination', tarballs], p.dir);
    const files = readdirSync(tarballs);
    expect(files).toHaveLength(pkgs.length);

    const app = join(work, 'app');
    mkdirSync(app);
    const deps: Record<string, string> = {};
    for (const p of pkgs) {
      const f = files.find((x) => x.startsWith(`${p.name.replace('@', '').replace('/', '-')}-`));
      expect(f, `tarball of ${p.name}`).toBeDefined();
      deps[p.name] = `file:${join(tarballs, f!)}`;
    }
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        type: 'module',
        dependencies: deps,
        // A TypeScript consumer on Node has Node's types, as every Node project does.
        devDependencies: { '@types/node': '^20.19.0' },
      }),
    );
    run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], app);

    const specifiers = pkgs.flatMap((p) =>
      p.entries.map((e) => (e === '.' ? p.name : `${p.name}/${e.slice(2)}`)),
    );
    // Run time: every entry point loads.
    const script = specifiers
      .map(
        (s, i) =>
          `import * as m${i} from '${s}'; if (Object.keys(m${i}).length === 0) throw new Error('${s} exports nothing');`,
      )
      .join('\n');
    writeFileSync(join(app, 'check.mjs'), `${script}\nconsole.log('ok');\n`);
    expect(run('node', ['check.mjs'], app).trim()).toBe('ok');

    // Types: a TypeScript consumer resolves every entry point's declarations.
    writeFileSync(
      join(app, 'check.ts'),
      specifiers
        .map((s, i) => `import * as t${i} from '${s}';\nexport const x${i}: object = t${i};`)
        .join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['check.ts'],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run('node', [tsc, '-p', 'tsconfig.json'], app);

    // Every installed package carries its license text, and a manifest whose exports map
    // the same subpaths as in the workspace with no `source` condition (it points at src/,
    // which is not shipped: `node --conditions=source` would fail).
    for (const p of pkgs) {
      const dir = join(app, 'node_modules', ...p.name.split('/'));
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8'), `${p.name} ships LICENSE`).toMatch(/^MIT License/);
      const shipped = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        exports: Record<string, unknown>;
      };
      expect(JSON.stringify(shipped.exports), `${p.name}'s shipped exports`).not.toContain('"source"');
      expect(
        Object.keys(shipped.exports)
          .filter((k) => k !== './package.json')
          .sort(),
      ).toEqual([...p.entries].sort());
    }

    // What a registry page and tools read: where the code lives and where bugs go, and a
    // README whose links work away from the repository (no relative ones).
    for (const p of pkgs) {
      const dir = join(app, 'node_modules', ...p.name.split('/'));
      const m = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        repository?: { url?: string; directory?: string };
        homepage?: string;
        bugs?: { url?: string };
        main?: string;
        types?: string;
      };
      expect(m.repository?.url, `${p.name} repository`).toMatch(/^git\+https:\/\//);
      expect(m.repository?.directory, `${p.name} repository.directory`).toBe(relative(root, p.dir));
      expect(m.homepage, `${p.name} homepage`).toMatch(/^https:\/\//);
      expect(m.bugs?.url, `${p.name} bugs`).toMatch(/^https:\/\//);
      const readme = readFileSync(join(dir, 'README.md'), 'utf8');
      const relativeLinks = [...readme.matchAll(/\]\(([^)\s]+)\)/g)]
        .map((x) => x[1]!)
        .filter((t) => !/^(https?:|#|mailto:)/.test(t));
      expect(relativeLinks, `${p.name} README links that break on a registry page`).toEqual([]);
    }

    // ESM only, said in a way tools understand: require() of a package names the reason
    // (ERR_REQUIRE_ESM on Node 20; newer Node loads it) instead of "not exported".
    writeFileSync(
      join(app, 'require.cjs'),
      `for (const s of ${JSON.stringify(specifiers)}) {
  try { require(s); } catch (e) {
    if (e.code !== 'ERR_REQUIRE_ESM' && e.code !== 'ERR_REQUIRE_ASYNC_MODULE') throw new Error(s + ': ' + e.code + ' ' + e.message);
  }
}
console.log('ok');
`,
    );
    expect(run('node', ['require.cjs'], app).trim()).toBe('ok');

    // A TypeScript project on the old `moduleResolution: node` finds every entry's types.
    writeFileSync(
      join(app, 'tsconfig.node10.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'ES2022',
          moduleResolution: 'node',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['check.ts'],
      }),
    );
    run('node', [tsc, '-p', 'tsconfig.node10.json'], app);

    // The binaries run from the installed tarballs.
    for (const p of pkgs) {
      for (const bin of Object.keys(p.bin)) {
        expect(run(join(app, 'node_modules', '.bin', bin), ['--help'], app)).toMatch(/Usage|Options/);
      }
    }
  });
});
