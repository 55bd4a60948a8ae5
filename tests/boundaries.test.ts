// The dependency rules of CONVENTIONS.md, enforced by scripts/check-boundaries.mjs: the real workspace must pass,
// and the checker must catch each kind of violation in a synthetic workspace (so this test can fail).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = path.join(ROOT, 'scripts', 'check-boundaries.mjs');

interface Project {
  name: string;
  root: string;
  tags: string[];
  packageName?: string;
  dependencies?: string[];
}
interface Violation {
  file: string;
  line: number;
  project?: string;
  spec?: string;
  rule: string;
  message: string;
}
interface BoundariesModule {
  checkBoundaries(workspace: { projects: Project[]; files: Record<string, string> }): Violation[];
  extractImports(source: string): Array<{ spec: string; line: number }>;
}

let mod: BoundariesModule;
beforeAll(async () => {
  // A plain .mjs script with no type declarations: import it by URL and type it here.
  mod = (await import(pathToFileURL(SCRIPT).href)) as BoundariesModule;
});

const lib = (name: string, scope: string, deps: string[] = []): Project => ({
  name,
  root: `libs/${name}`,
  tags: ['type:lib', `scope:${scope}`],
  packageName: `@lookup/${name}`,
  dependencies: deps.map((d) => `@lookup/${d}`),
});
const service = (name: string, root: string, deps: string[] = []): Project => ({
  name,
  root,
  tags: ['type:service'],
  packageName: `@lookup/${name}`,
  dependencies: deps.map((d) => `@lookup/${d}`),
});

/** A workspace that follows every rule; each case below breaks exactly one thing. */
function cleanWorkspace(): { projects: Project[]; files: Record<string, string> } {
  return {
    projects: [
      lib('contracts', 'contracts'),
      lib('config', 'config', ['contracts']),
      lib('logging', 'logging', ['config', 'contracts']),
      lib('messaging', 'infra', ['contracts', 'config', 'logging']),
      lib('store', 'infra', ['contracts', 'config', 'logging']),
      lib('coordination', 'infra', ['contracts', 'config', 'logging']),
      lib('worker-kit', 'worker-kit', ['contracts', 'config', 'logging', 'messaging', 'store']),
      service('api', 'services/api', ['contracts', 'config', 'messaging', 'store']),
      service('worker-ping', 'services/workers/ping', ['worker-kit', 'contracts']),
    ],
    files: {
      'libs/contracts/src/index.ts': "export * from './status.ts';\nimport { Type } from '@sinclair/typebox';\n",
      'libs/contracts/src/status.ts': "import { isIPv6 } from 'node:net';\nexport const x = 1;\n",
      'libs/config/src/config.ts': "import type { ServiceType } from '@lookup/contracts';\n",
      'libs/logging/src/logging.ts': "import { pino } from 'pino';\nimport type { Config } from '@lookup/config';\n",
      'libs/messaging/src/connection.ts':
        "import amqp from 'amqplib';\nimport type { Logger } from '@lookup/logging';\nimport { parseMessage } from '@lookup/contracts';\n",
      'libs/worker-kit/src/worker.ts':
        "import { createJobStore } from '@lookup/store';\nimport { connect } from '@lookup/messaging';\nimport { helper } from './helper.ts';\n",
      'libs/worker-kit/src/worker.test.ts': "import { runWorker } from '@lookup/worker-kit';\nimport { describe } from 'vitest';\n",
      'services/api/src/main.ts': "import { loadConfig } from '@lookup/config';\nimport { buildApp } from './app.ts';\n",
      'services/api/src/routes/lookup.ts': "import { buildApp } from '../app.ts';\n",
      'services/workers/ping/src/main.ts':
        "import { runWorker } from '@lookup/worker-kit';\n// import { x } from '@lookup/api';  (commented out: not an import)\nconst url = 'http://example.invalid//x';\n",
    },
  };
}

const rules = (v: Violation[]) => v.map((x) => x.rule);

describe('check-boundaries: the real workspace', () => {
  it('has no violation (node scripts/check-boundaries.mjs exits 0)', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.status, `check-boundaries reported:\n${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/check-boundaries: ok \(\d+ projects, \d+ source files\)/);
  });
});

describe('check-boundaries: synthetic workspaces', () => {
  it('accepts a workspace that follows every rule', () => {
    expect(mod.checkBoundaries(cleanWorkspace())).toEqual([]);
  });

  it('rejects contracts importing anything internal', () => {
    const ws = cleanWorkspace();
    ws.files['libs/contracts/src/status.ts'] += "import { loadConfig } from '@lookup/config';\n";
    const v = mod.checkBoundaries(ws);
    expect(v).toHaveLength(2); // the rule, and the undeclared dependency
    expect(v[0]).toMatchObject({ file: 'libs/contracts/src/status.ts', line: 3, spec: '@lookup/config', rule: 'scope:contracts' });
    expect(rules(v)).toContain('undeclared');
  });

  it('rejects config depending on logging (config depends only on contracts)', () => {
    const ws = cleanWorkspace();
    ws.projects.find((p) => p.name === 'config')!.dependencies!.push('@lookup/logging');
    ws.files['libs/config/src/config.ts'] += "import type { Logger } from '@lookup/logging';\n";
    const v = mod.checkBoundaries(ws);
    expect(rules(v)).toEqual(['scope:config', 'scope:config']); // declared in package.json, and imported
    expect(v.map((x) => x.file)).toEqual(['libs/config/package.json', 'libs/config/src/config.ts']);
  });

  it('rejects one infrastructure library importing another (messaging -> store)', () => {
    const ws = cleanWorkspace();
    ws.projects.find((p) => p.name === 'messaging')!.dependencies!.push('@lookup/store');
    ws.files['libs/messaging/src/connection.ts'] += "import { createJobStore } from '@lookup/store';\n";
    const v = mod.checkBoundaries(ws);
    expect(v.length).toBeGreaterThan(0);
    expect(v.every((x) => x.rule === 'scope:infra')).toBe(true);
  });

  it('rejects worker-kit importing a service', () => {
    const ws = cleanWorkspace();
    ws.projects.find((p) => p.name === 'worker-kit')!.dependencies!.push('@lookup/api');
    ws.files['libs/worker-kit/src/worker.ts'] += "import { buildApp } from '@lookup/api';\n";
    expect(rules(mod.checkBoundaries(ws))).toEqual(['scope:worker-kit', 'scope:worker-kit']);
  });

  it('rejects a service importing another service, statically or dynamically', () => {
    const ws = cleanWorkspace();
    ws.projects.find((p) => p.name === 'worker-ping')!.dependencies!.push('@lookup/api');
    ws.files['services/workers/ping/src/main.ts'] += "const m = await import('@lookup/api');\n";
    const v = mod.checkBoundaries(ws);
    expect(v.filter((x) => x.file.endsWith('.ts'))).toEqual([
      expect.objectContaining({ file: 'services/workers/ping/src/main.ts', line: 4, rule: 'type:service', spec: '@lookup/api' }),
    ]);
  });

  it('rejects deep imports into another project, by package path or by relative path', () => {
    const ws = cleanWorkspace();
    ws.files['services/api/src/main.ts'] += "import { script } from '@lookup/store/src/lua/record.ts';\n";
    ws.files['services/api/src/routes/lookup.ts'] += "import { connect } from '../../../../libs/messaging/src/connection.ts';\n";
    const v = mod.checkBoundaries(ws);
    expect(v).toEqual([
      expect.objectContaining({ file: 'services/api/src/main.ts', line: 3, rule: 'deep-import' }),
      expect.objectContaining({ file: 'services/api/src/routes/lookup.ts', line: 2, rule: 'deep-import' }),
    ]);
    expect(v[1]!.message).toContain('"messaging"');
  });

  it('rejects a deep import in a test file and a vi.mock of a deep path', () => {
    const ws = cleanWorkspace();
    ws.files['libs/worker-kit/src/worker.test.ts'] += "vi.mock('@lookup/messaging/src/connection.ts', () => ({}));\n";
    expect(mod.checkBoundaries(ws)).toEqual([expect.objectContaining({ rule: 'deep-import', line: 3 })]);
  });

  it('rejects a relative import that leaves the project even without entering another one', () => {
    const ws = cleanWorkspace();
    ws.files['libs/config/src/config.ts'] += "import x from '../../../tests/helpers.ts';\n";
    expect(rules(mod.checkBoundaries(ws))).toEqual(['deep-import']);
  });

  it('rejects an untagged project, an unknown internal package, and a file outside every project', () => {
    const ws = cleanWorkspace();
    ws.projects.push({ name: 'mystery', root: 'libs/mystery', tags: [], packageName: '@lookup/mystery', dependencies: [] });
    ws.files['services/api/src/main.ts'] += "import { nope } from '@lookup/does-not-exist';\n";
    ws.files['services/stray.ts'] = 'export const stray = 1;\n';
    const v = rules(mod.checkBoundaries(ws));
    expect(v.filter((r) => r === 'tags')).toHaveLength(2);
    expect(v).toContain('unknown-package');
    expect(v).toContain('no-project');
  });
});

describe('check-boundaries: import extraction', () => {
  it('finds every import form and ignores comments and strings that only look like imports', () => {
    const src = [
      "import a from 'a';",
      'import {',
      '  b,',
      '  type c,',
      "} from 'b';",
      "// import z from 'commented-out'",
      "/* import y from 'block-comment' */",
      "const u = 'http://x//y'; import 'side-effect';",
      "export * from './e.ts'; export * as n from '../n.ts';",
      "const d = await import('dynamic'); const r = require('required');",
      "export type { T } from './t.ts';",
    ].join('\n');
    expect(mod.extractImports(src)).toEqual([
      { spec: 'a', line: 1 },
      { spec: 'b', line: 5 },
      { spec: 'side-effect', line: 8 },
      { spec: './e.ts', line: 9 },
      { spec: '../n.ts', line: 9 },
      { spec: 'dynamic', line: 10 },
      { spec: 'required', line: 10 },
      { spec: './t.ts', line: 11 },
    ]);
  });
});
