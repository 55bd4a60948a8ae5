#!/usr/bin/env node
/**
 * Compiles every workspace package's TypeScript to JavaScript, so services run as plain Node (no tsx loader
 * thread: about 35 MB less memory per process, and no compilation at start-up).
 *
 *   <package>/src/**.ts  ->  <package>/dist/src/**.js   (relative `.ts` imports rewritten to `.js`)
 *   <package>/src/** other files (Lua scripts)  ->  copied beside them
 *   <package>/<dir>/ that code reads by path (e.g. rdap's bootstrap/)  ->  <package>/dist/<dir>/
 *   <package>/native/<name>.c (Node-API addons in plain C, e.g. ping's ICMP socket)  ->  <package>/dist/native/<name>.node
 *
 * Each library's package.json exports `dist/src/index.js` under the `lookup-dist` condition, which the
 * start scripts pass to node; tools that read TypeScript (vitest, tsx) keep using `src/`. A transform, not a
 * type check: `npm run typecheck` does that. Takes well under a second.
 *
 * Safe while services run from dist/ (tests build while other tests start processes): a file whose content
 * is unchanged is not touched, a changed one is replaced atomically (write, then rename), and only files no
 * longer produced are removed.
 *
 * Native addons are compiled with the C compiler directly (`$CC` or `cc`; no node-gyp, no install script, nothing
 * downloaded), against the headers of the node running this script (<prefix>/include/node). An addon newer than
 * every file of its native/ folder is not recompiled. Without a compiler or headers, or when compilation fails,
 * the build prints one warning and goes on without the addon (a stale one is removed): the code that loads it
 * must have a fallback (the Ping worker then runs the system ping).
 */
import { readdirSync, readFileSync, mkdirSync, writeFileSync, statSync, existsSync, rmSync, renameSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { transformSync } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const SKIP_DIRS = new Set(['node_modules', 'dist', 'src', '__fixtures__']);
const NATIVE_DIR = 'native';
const RELATIVE_TS = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+?)\.ts\2/g;

function packages() {
  const dirs = [];
  for (const pattern of pkg.workspaces) {
    const base = path.join(root, pattern.replace(/\/\*$/, ''));
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const dir = path.join(base, name);
      if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'src'))) dirs.push(dir);
    }
  }
  return dirs;
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) {
      if (!SKIP_DIRS.has(name)) yield* walk(full);
    } else {
      yield full;
    }
  }
}

let files = 0;
let produced = new Set();

/** Writes `content` to `target` unless it already holds exactly that; atomically (temp file + rename). */
function put(target, content) {
  produced.add(target);
  mkdirSync(path.dirname(target), { recursive: true });
  try {
    if (readFileSync(target).equals(Buffer.from(content))) return;
  } catch {
    // not there yet
  }
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, target);
}

for (const dir of packages()) {
  const out = path.join(dir, 'dist');
  produced = new Set();
  for (const file of walk(path.join(dir, 'src'))) {
    const rel = path.relative(dir, file);
    // Tests, and test support under src/testing/ (it imports vitest, a devDependency), stay out of dist/.
    if (file.endsWith('.test.ts') || rel.split(path.sep).includes('testing')) continue;
    if (file.endsWith('.d.ts')) continue;
    if (file.endsWith('.ts')) {
      const { code, map } = transformSync(readFileSync(file, 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: 'node20',
        sourcemap: 'external',
        sourcefile: path.relative(path.join(out, path.dirname(rel)), file),
      });
      const target = path.join(out, rel.replace(/\.ts$/, '.js'));
      put(target, `${code.replace(RELATIVE_TS, '$1$2$3.js$2')}//# sourceMappingURL=${path.basename(target)}.map\n`);
      put(`${target}.map`, map);
      files++;
    } else {
      put(path.join(out, rel), readFileSync(file));
    }
  }
  // Node-API addons: <package>/native/<name>.c -> dist/native/<name>.node.
  const native = path.join(dir, NATIVE_DIR);
  if (existsSync(native)) buildNative(native, path.join(out, NATIVE_DIR));
  // Asset folders beside src/ that code reads by path relative to its module (../bootstrap/ from src/).
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (SKIP_DIRS.has(name) || name === NATIVE_DIR || !statSync(full).isDirectory()) continue;
    for (const file of walk(full)) put(path.join(out, path.relative(dir, file)), readFileSync(file));
  }
  // What an earlier build produced from sources that are gone.
  if (existsSync(out)) for (const file of walkAll(out)) if (!produced.has(file) && !file.endsWith('.tmp')) rmSync(file, { force: true });
}

/** Compiles each native/*.c to outDir/<name>.node unless the output is newer than every file in native/. */
function buildNative(nativeDir, outDir) {
  const sources = readdirSync(nativeDir).filter((f) => f.endsWith('.c'));
  const newestInput = Math.max(...readdirSync(nativeDir).map((f) => statSync(path.join(nativeDir, f)).mtimeMs));
  for (const source of sources) {
    const target = path.join(outDir, source.replace(/\.c$/, '.node'));
    const rel = path.relative(root, path.join(nativeDir, source));
    if (existsSync(target) && statSync(target).mtimeMs > newestInput) {
      produced.add(target);
      continue;
    }
    const include = nodeIncludeDir();
    const cc = process.env.CC || 'cc';
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      if (!include) throw new Error(`no node_api.h under ${path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node')}`);
      mkdirSync(outDir, { recursive: true });
      execFileSync(cc, ['-O2', '-shared', '-fPIC', '-Wall', '-I', include, '-o', tmp, path.join(nativeDir, source)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      renameSync(tmp, target);
      produced.add(target);
    } catch (err) {
      rmSync(tmp, { force: true });
      const detail = err.code === 'ENOENT' ? `no C compiler (${cc})` : (err.stderr?.toString().trim().split('\n').slice(0, 3).join(' | ') || (err.status != null ? `${cc} exited with status ${err.status}` : err.message));
      console.warn(`build: warning: ${rel} not compiled (${detail}); going on without ${path.basename(target)}`);
    }
  }
}

/** Node's headers for addons: <prefix>/include/node of the running node (/usr/local in the node image). */
function nodeIncludeDir() {
  const candidates = [path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node')];
  if (process.env.npm_config_nodedir) candidates.push(path.join(process.env.npm_config_nodedir, 'include', 'node'));
  return candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')));
}

function* walkAll(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yield* walkAll(full);
    else yield full;
  }
}
if (!process.argv.includes('--quiet')) console.log(`build: ${files} TypeScript files compiled into each package's dist/`);
