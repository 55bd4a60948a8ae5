// The dependency rules of CONVENTIONS.md, enforced by dependency-cruiser with .dependency-cruiser.cjs
// (`npm run graph:check`): the real workspace must pass, and the same config must report each kind of violation
// in a small synthetic workspace written to a temp folder (so this test can fail).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPCRUISE = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = '.dependency-cruiser.cjs';
/** `npm run graph:check`: depcruise with these arguments (err-long: each violation with its rule's comment). */
const GRAPH_CHECK = ['--config', CONFIG, '--output-type', 'err-long', 'libs', 'services'];

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/**
 * Cruises libs/ and services/ of `dir` with the copy of the repository's config in it, in process (the CLI would
 * load TypeScript again for each case); returns the violations as `rule from -> to`, sorted.
 */
async function cruiseViolations(dir: string): Promise<string[]> {
  const options = await extractDepcruiseOptions(path.join(dir, CONFIG));
  const { output } = await cruise(['libs', 'services'], { ...options, baseDir: dir, validate: true });
  if (typeof output === 'string') throw new Error(`unexpected depcruise output: ${output}`);
  const violations = output.summary.violations;
  expect(violations.every((v) => v.rule.severity === 'error')).toBe(true);
  return violations.map((v) => `${v.rule.name} ${v.from} -> ${v.to}`).sort();
}

type Tree = Record<string, string>;

/**
 * Writes a workspace into a new temp folder: the root package.json (npm workspaces), the repository's depcruise
 * config, `files`, and node_modules with a link per workspace package (as npm install makes them) plus two plain
 * npm packages, `declared-pkg` (libs/contracts declares it) and `undeclared-pkg` (nobody does).
 */
function writeWorkspace(files: Tree): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'boundaries-'));
  temps.push(dir);
  const put = (rel: string, content: string) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  };
  put('package.json', JSON.stringify({ name: 'fixture', private: true, type: 'module', workspaces: ['libs/*', 'services/*', 'services/workers/*'] }));
  cpSync(path.join(ROOT, CONFIG), path.join(dir, CONFIG));
  for (const pkg of ['declared-pkg', 'undeclared-pkg']) {
    put(`node_modules/${pkg}/package.json`, JSON.stringify({ name: pkg, version: '1.0.0', main: 'index.js' }));
    put(`node_modules/${pkg}/index.js`, 'module.exports = 1;\n');
  }
  for (const [rel, content] of Object.entries(files)) {
    put(rel, content);
    if (path.basename(rel) !== 'package.json') continue;
    const name = (JSON.parse(content) as { name: string }).name;
    mkdirSync(path.join(dir, 'node_modules', '@lookup'), { recursive: true });
    symlinkSync(path.relative(path.join(dir, 'node_modules', '@lookup'), path.join(dir, path.dirname(rel))), path.join(dir, 'node_modules', name));
  }
  return dir;
}

const manifest = (name: string, deps: string[], entry = true) =>
  JSON.stringify({
    name: `@lookup/${name}`,
    private: true,
    type: 'module',
    ...(entry ? { exports: { '.': { 'lookup-dist': './dist/src/index.js', default: './src/index.ts' } } } : {}),
    dependencies: Object.fromEntries(deps.map((d) => [d.includes('/') || d.endsWith('-pkg') ? d : `@lookup/${d}`, '*'])),
  });

/** A workspace that follows every rule; each violation below is one more file (or one more declaration). */
function cleanWorkspace(): Tree {
  return {
    'libs/contracts/package.json': manifest('contracts', ['declared-pkg']),
    'libs/contracts/src/index.ts': "export * from './status.ts';\nimport pad from 'declared-pkg';\nexport const padded = pad;\n",
    'libs/contracts/src/status.ts': "import { isIPv6 } from 'node:net';\nexport const v6 = isIPv6;\n",
    'libs/config/package.json': manifest('config', ['contracts']),
    'libs/config/src/index.ts': "import type { v6 } from '@lookup/contracts';\nexport type V6 = typeof v6;\n",
    // The compiled copy (npm run build) is not checked: this import would break three rules.
    'libs/config/dist/src/index.js': "import '@lookup/api';\nimport '../../../../services/api/src/app.ts';\n",
    'libs/logging/package.json': manifest('logging', ['config', 'contracts']),
    'libs/logging/src/index.ts': "import type { V6 } from '@lookup/config';\nimport { v6 } from '@lookup/contracts';\nexport const l: V6 = v6;\n",
    'libs/messaging/package.json': manifest('messaging', ['contracts', 'config', 'logging']),
    'libs/messaging/src/index.ts': "import { l } from '@lookup/logging';\nexport const m = l;\n",
    'libs/store/package.json': manifest('store', ['contracts', 'config', 'logging']),
    'libs/store/src/index.ts': "import { l } from '@lookup/logging';\nexport const s = l;\n",
    'libs/runtime/package.json': manifest('runtime', ['logging']),
    'libs/runtime/src/index.ts': "import type { l } from '@lookup/logging';\nexport type R = typeof l;\n",
    'libs/worker-kit/package.json': manifest('worker-kit', ['contracts', 'logging', 'messaging', 'store', 'runtime']),
    'libs/worker-kit/src/index.ts':
      "import { s } from '@lookup/store';\nimport { m } from '@lookup/messaging';\nimport type { R } from '@lookup/runtime';\nimport { h } from './helper.ts';\nexport const w = [s, m, h];\nexport type W = R;\n",
    'libs/worker-kit/src/helper.ts': 'export const h = 1;\n',
    // A project may import its own public entry, and its tests the shared test fixtures.
    'libs/worker-kit/src/index.test.ts':
      "import { w } from '@lookup/worker-kit';\nimport { server } from '../../../tests/fixtures/server.ts';\nexport const t = [w, server];\n",
    'tests/fixtures/server.ts': 'export const server = 1;\n',
    'tests/helpers.ts': 'export const helper = 1;\n',
    'services/api/package.json': manifest('api', ['config', 'contracts', 'messaging', 'store'], false),
    'services/api/src/main.ts': "import type { V6 } from '@lookup/config';\nimport { app } from './app.ts';\nexport const main: [V6?, number?] = [undefined, app];\n",
    'services/api/src/app.ts': 'export const app = 1;\n',
    'services/api/src/routes/lookup.ts': "import { app } from '../app.ts';\nexport const route = app;\n",
    'services/workers/ping/package.json': manifest('worker-ping', ['worker-kit', 'runtime'], false),
    'services/workers/ping/src/main.ts':
      "import { w } from '@lookup/worker-kit';\n// import { app } from '../../../api/src/app.ts';  (a comment, not an import)\nconst url = 'http://example.invalid//x';\nexport const main = [w, url];\n",
  };
}

/**
 * What the package.json files alone say: each manifest, and beside it a src/index.ts importing every internal package
 * it declares, so the import rules judge the declarations (a declared dependency must obey the layering too).
 */
function declarations(manifests: Tree): Tree {
  const files: Tree = {};
  for (const [rel, content] of Object.entries(manifests)) {
    const deps = Object.keys((JSON.parse(content) as { dependencies?: Record<string, string> }).dependencies ?? {});
    files[rel] = content;
    files[rel.replace(/package\.json$/, 'src/index.ts')] =
      `${deps.filter((d) => d.startsWith('@lookup/')).map((d) => `import '${d}';`).join('\n')}\nexport {};\n`;
  }
  return files;
}

describe('dependency-cruiser: the real workspace', () => {
  it('npm run graph:check is depcruise with this config', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['graph:check']).toBe(`depcruise ${GRAPH_CHECK.join(' ')}`);
  });

  it('has no violation', () => {
    const r = spawnSync(process.execPath, [DEPCRUISE, ...GRAPH_CHECK], { cwd: ROOT, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.status, `depcruise reported:\n${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/no dependency violations found \((\d+) modules/);
    // It did look at the whole workspace: every library and service, test files included.
    expect(Number(/\((\d+) modules/.exec(r.stdout)![1])).toBeGreaterThan(150);
  });

  it('declares in package.json only internal packages the layering allows (no cycle among them either)', async () => {
    const manifests: Tree = {};
    for (const top of ['libs', 'services', 'services/workers']) {
      for (const name of readdirSync(path.join(ROOT, top))) {
        const rel = `${top}/${name}/package.json`;
        if (existsSync(path.join(ROOT, rel))) manifests[rel] = readFileSync(path.join(ROOT, rel), 'utf8');
      }
    }
    const files = declarations(manifests);
    expect(Object.keys(files).length).toBeGreaterThan(2 * 15);
    expect(await cruiseViolations(writeWorkspace(files))).toEqual([]);
  });
});

describe('dependency-cruiser: synthetic workspaces', () => {
  it('accepts a workspace that follows every rule', async () => {
    expect(await cruiseViolations(writeWorkspace(cleanWorkspace()))).toEqual([]);
  });

  it('reports each kind of violation', async () => {
    const ws = cleanWorkspace();
    const add = (file: string, content: string) => {
      ws[file] = content;
    };
    // Layers: contracts imports config (type-only imports count); config imports logging, declared or not.
    add('libs/contracts/src/layer.ts', "import type { V6 } from '@lookup/config';\nexport type X = V6;\n");
    ws['libs/config/package.json'] = manifest('config', ['contracts', 'logging']);
    add('libs/config/src/layer.ts', "import { l } from '@lookup/logging';\nexport const x = l;\n");
    // One infrastructure library importing another (declared, so only the layer rule fires).
    ws['libs/messaging/package.json'] = manifest('messaging', ['contracts', 'config', 'logging', 'store']);
    add('libs/messaging/src/layer.ts', "import { s } from '@lookup/store';\nexport const x = s;\n");
    // A library reaching into a service; a service into another, with a dynamic import.
    add('libs/worker-kit/src/service.ts', "import { app } from '../../../services/api/src/app.ts';\nexport const x = app;\n");
    add('services/workers/ping/src/service.ts', "export const x = await import('../../../api/src/app.ts');\n");
    // Deep imports by package path, in code and in a vitest mock.
    add('services/api/src/deep.ts', "import { h } from '@lookup/store/src/helper.ts';\nexport const x = h;\n");
    add('libs/worker-kit/src/mock.test.ts', "vi.mock('@lookup/messaging/src/index.ts', () => ({}));\n");
    // Relative imports leaving the project: into another project's entry, into tests/ (allowed to tests only).
    add('services/api/src/relative.ts', "import { m } from '../../../libs/messaging/src/index.ts';\nexport const x = m;\n");
    add('libs/config/src/relative.ts', "import { helper } from '../../../tests/helpers.ts';\nexport const x = helper;\n");
    add('libs/store/src/fixture.ts', "import { server } from '../../../tests/fixtures/server.ts';\nexport const x = server;\n");
    // An allowed library the service's package.json does not declare; an unknown internal package.
    add('services/api/src/undeclared.ts', "import type { R } from '@lookup/runtime';\nexport type X = R;\n");
    add('services/api/src/unknown.ts', "import { nope } from '@lookup/does-not-exist';\nexport const x = nope;\n");
    // An npm package no package.json declares.
    add('libs/store/src/npm.ts', "import pad from 'undeclared-pkg';\nexport const x = pad;\n");
    // A cycle (reported once, at its first edge).
    add('libs/store/src/a.ts', "import { b } from './b.ts';\nexport const a = () => b;\n");
    add('libs/store/src/b.ts', "import { a } from './a.ts';\nexport const b = () => a;\n");
    // A library with no line in LAYERS, and a file outside every project.
    add('libs/mystery/package.json', manifest('mystery', []));
    add('libs/mystery/src/index.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n");
    add('services/stray.ts', "import { join } from 'node:path';\nexport const stray = join;\n");

    expect(await cruiseViolations(writeWorkspace(ws))).toEqual(
      [
        'layer-contracts libs/contracts/src/layer.ts -> libs/config/src/index.ts',
        'undeclared-internal-dependency libs/contracts/src/layer.ts -> libs/config/src/index.ts',
        'layer-config libs/config/src/layer.ts -> libs/logging/src/index.ts',
        'layer-messaging libs/messaging/src/layer.ts -> libs/store/src/index.ts',
        'library-to-service libs/worker-kit/src/service.ts -> services/api/src/app.ts',
        'deep-import libs/worker-kit/src/service.ts -> services/api/src/app.ts',
        'relative-import-leaves-project libs/worker-kit/src/service.ts -> services/api/src/app.ts',
        'undeclared-internal-dependency libs/worker-kit/src/service.ts -> services/api/src/app.ts',
        'service-to-service services/workers/ping/src/service.ts -> services/api/src/app.ts',
        'deep-import services/workers/ping/src/service.ts -> services/api/src/app.ts',
        'relative-import-leaves-project services/workers/ping/src/service.ts -> services/api/src/app.ts',
        'undeclared-internal-dependency services/workers/ping/src/service.ts -> services/api/src/app.ts',
        'deep-import services/api/src/deep.ts -> @lookup/store/src/helper.ts',
        'deep-import libs/worker-kit/src/mock.test.ts -> @lookup/messaging/src/index.ts',
        'relative-import-leaves-project services/api/src/relative.ts -> libs/messaging/src/index.ts',
        'relative-import-leaves-project libs/config/src/relative.ts -> tests/helpers.ts',
        'relative-import-leaves-project libs/store/src/fixture.ts -> tests/fixtures/server.ts',
        'undeclared-internal-dependency services/api/src/undeclared.ts -> libs/runtime/src/index.ts',
        'not-to-unresolvable services/api/src/unknown.ts -> @lookup/does-not-exist',
        'no-non-package-json libs/store/src/npm.ts -> node_modules/undeclared-pkg/index.js',
        'no-circular libs/store/src/a.ts -> libs/store/src/b.ts',
        'unlisted-library libs/mystery/src/index.ts -> fs',
        'outside-project services/stray.ts -> path',
      ].sort(),
    );
  });

  it('catches a package.json declaring what the layering forbids', async () => {
    // The declaration-only check above, on the clean workspace with one bad declaration (config -> logging).
    const ws = cleanWorkspace();
    ws['libs/config/package.json'] = manifest('config', ['contracts', 'logging']);
    const files = declarations(Object.fromEntries(Object.entries(ws).filter(([rel]) => path.basename(rel) === 'package.json')));
    expect(await cruiseViolations(writeWorkspace(files))).toEqual([
      'layer-config libs/config/src/index.ts -> libs/logging/src/index.ts',
      // logging declares config: with config declaring logging, the declarations form a cycle (reported once).
      'no-circular libs/config/src/index.ts -> libs/logging/src/index.ts',
    ]);
  });
});
