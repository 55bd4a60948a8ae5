#!/usr/bin/env node
/**
 * Sets each Deployment's container `args` in deploy/k8s/base/*.yaml to the argv of its `start:<name>` script in
 * package.json (`api`, `saga`, `resource-worker`; `<slug>-worker` runs `start:<slug>`), keeping every comment. Run it
 * after changing a start script: `node scripts/sync-k8s-args.mjs` (`--check`: exit 1 and list what differs, change
 * nothing). tests/k8s.test.ts fails while they differ, as tests/compose.test.ts does for docker-compose.yml.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { readServices } from './start.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BASE = path.join(ROOT, 'deploy', 'k8s', 'base');
const check = process.argv.includes('--check');

const scripts = new Map(readServices(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))).map((s) => [s.name, s.argv]));
const argvFor = (deployment) => scripts.get(deployment) ?? scripts.get(deployment.replace(/-worker$/, ''));

const stale = [];
for (const file of readdirSync(BASE).filter((f) => f.endsWith('.yaml')).sort()) {
  const full = path.join(BASE, file);
  const source = readFileSync(full, 'utf8');
  const docs = parseAllDocuments(source);
  let changed = false;
  for (const doc of docs) {
    if (doc.get('kind') !== 'Deployment') continue;
    const name = doc.getIn(['metadata', 'name']);
    const argv = argvFor(name);
    if (!argv) throw new Error(`${file}: Deployment ${name} has no start:<name> script in package.json`);
    const args = ['spec', 'template', 'spec', 'containers', 0, 'args'];
    if (JSON.stringify(doc.getIn(args)?.toJSON()) === JSON.stringify(argv)) continue;
    stale.push(`${file}: ${name}`);
    doc.setIn(args, doc.createNode(argv));
    changed = true;
  }
  if (changed && !check) writeFileSync(full, docs.map(String).join(''));
}
if (stale.length) process.stdout.write(`${check ? 'differs from package.json' : 'updated'}: ${stale.join(', ')}\n`);
process.exitCode = check && stale.length ? 1 : 0;
