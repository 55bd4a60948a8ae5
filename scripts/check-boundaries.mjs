#!/usr/bin/env node
// Enforces the dependency rules of CONVENTIONS.md ("Shape") from each project's project.json tags and from the
// imports actually written in the code. Run by `npm run graph:check` and by tests/boundaries.test.ts.
//
// Rules (a dependency is allowed when the target project carries one of the allowed tags, as Nx's
// `onlyDependOnLibsWithTags`; a project matched by several rules must satisfy each of them):
//   scope:contracts   depends on no internal project
//   scope:config      contracts
//   scope:logging     contracts, config
//   scope:infra       contracts, config, logging        (messaging, store, coordination)
//   scope:dns         contracts, config, logging        (DNS resolution for lookups)
//   scope:worker-kit  libraries only (type:lib)
//   type:service      libraries only: a service never imports another service
// and, for every project:
//   - every project has a type tag and is matched by at least one rule;
//   - no deep imports: `@lookup/x/anything` (each library has one public entry, `@lookup/x`), and no relative
//     import that leaves the importing file's project folder;
//   - no import of an unknown `@lookup/*` package;
//   - an imported internal package is declared in the importing project's package.json dependencies, and the
//     declared internal dependencies obey the same rules.
//
// Imports are read textually (a regex over every .ts/.mts/.cts/.tsx file under libs/ and services/, test files
// included), so the check works even when the code does not compile yet.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const INTERNAL_SCOPE = '@lookup/';

export const RULES = [
  { tag: 'scope:contracts', allow: [], text: 'contracts depend on nothing internal' },
  { tag: 'scope:config', allow: ['scope:contracts'], text: 'config depends only on contracts' },
  { tag: 'scope:logging', allow: ['scope:contracts', 'scope:config'], text: 'logging depends only on config and contracts' },
  {
    tag: 'scope:infra',
    allow: ['scope:contracts', 'scope:config', 'scope:logging'],
    text: 'messaging, store and coordination depend only on contracts, config and logging',
  },
  { tag: 'scope:dns', allow: ['scope:contracts', 'scope:config', 'scope:logging'], text: 'dns depends only on contracts, config and logging' },
  { tag: 'scope:worker-kit', allow: ['type:lib'], text: 'worker-kit depends on libraries only' },
  { tag: 'type:service', allow: ['type:lib'], text: 'services depend on libraries only, never on another service' },
];

const TYPE_TAGS = ['type:lib', 'type:service'];
const SOURCE_EXT = /\.(?:ts|mts|cts|tsx)$/;

// ---------------------------------------------------------------------------------------------------------------
// Import extraction

/**
 * Blanks out comments (keeping newlines, so offsets still give line numbers) while leaving string and template
 * literals alone, so `'http://x'` is not taken for a comment and a commented-out import is not taken for code.
 */
export function stripComments(source) {
  return source.replace(
    /("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g,
    (m, str) => (str !== undefined ? m : m.replace(/[^\n]/g, ' ')),
  );
}

const IMPORT_PATTERNS = [
  // import x from 'm'; import { a, type b } from 'm'; import type X from 'm'; import * as n from 'm';
  // export * from 'm'; export { a } from 'm'; import 'm';  (clauses may span lines)
  /(?:^|[;\n}])[ \t]*(?:import|export)\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s*from\s*)?(['"])([^'"\n]+)\1/g,
  // import('m'), dynamic
  /\bimport\s*\(\s*(['"])([^'"\n]+)\1/g,
  // require('m'), import x = require('m')
  /\brequire\s*\(\s*(['"])([^'"\n]+)\1/g,
  // vitest module mocks name a module too
  /\bvi\s*\.\s*(?:mock|doMock|unmock|doUnmock|importActual|importMock)\s*\(\s*(['"])([^'"\n]+)\1/g,
];

/** Returns `[{ spec, line }]` for every module specifier the source imports, in source order. */
export function extractImports(source) {
  const text = stripComments(source);
  const found = new Map(); // offset of the specifier -> entry (patterns may overlap)
  for (const re of IMPORT_PATTERNS) {
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const offset = m.index + m[0].lastIndexOf(m[1] + m[2] + m[1]);
      if (!found.has(offset)) found.set(offset, { spec: m[2], line: lineAt(text, offset) });
    }
  }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

function lineAt(text, offset) {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

// ---------------------------------------------------------------------------------------------------------------
// The check itself (pure: no I/O, so tests can feed it a synthetic workspace)

/**
 * @param {{ projects: Array<{ name: string, root: string, tags: string[], packageName?: string,
 *           dependencies?: string[] }>, files: Record<string, string> }} workspace
 *   `root` and the keys of `files` are POSIX paths relative to the repository root; `dependencies` are the
 *   package names listed in the project's package.json (dependencies, devDependencies, peerDependencies).
 * @returns {Array<{ file: string, line: number, project?: string, spec?: string, rule: string, message: string }>}
 */
export function checkBoundaries({ projects, files }) {
  const violations = [];
  const byPackage = new Map();
  for (const p of projects) if (p.packageName) byPackage.set(p.packageName, p);
  const sortedByRoot = [...projects].sort((a, b) => b.root.length - a.root.length);
  const ownerOf = (file) => sortedByRoot.find((p) => file === p.root || file.startsWith(`${p.root}/`));

  // Project-level checks: tags, and the internal dependencies declared in package.json.
  for (const p of projects) {
    const where = p.projectFile ?? `${p.root}/project.json`;
    if (!p.tags.some((t) => TYPE_TAGS.includes(t))) {
      violations.push({ file: where, line: 0, project: p.name, rule: 'tags', message: `project "${p.name}" has no type tag (one of ${TYPE_TAGS.join(', ')})` });
    }
    if (!RULES.some((r) => p.tags.includes(r.tag))) {
      violations.push({ file: where, line: 0, project: p.name, rule: 'tags', message: `project "${p.name}" (tags: ${p.tags.join(', ') || 'none'}) matches no boundary rule; tag it with one of ${RULES.map((r) => r.tag).join(', ')}` });
    }
    for (const dep of p.dependencies ?? []) {
      if (!dep.startsWith(INTERNAL_SCOPE)) continue;
      const target = byPackage.get(dep);
      const where2 = `${p.root}/package.json`;
      if (!target) {
        violations.push({ file: where2, line: 0, project: p.name, spec: dep, rule: 'unknown-package', message: `declares unknown internal package ${dep}` });
        continue;
      }
      if (target === p) continue;
      for (const v of ruleViolations(p, target)) violations.push({ file: where2, line: 0, project: p.name, spec: dep, ...v });
    }
  }

  // Import-level checks.
  for (const file of Object.keys(files).sort()) {
    const owner = ownerOf(file);
    if (!owner) {
      violations.push({ file, line: 0, rule: 'no-project', message: 'file belongs to no project (no project.json in any folder above it), so no boundary applies' });
      continue;
    }
    for (const { spec, line } of extractImports(files[file])) {
      const at = { file, line, project: owner.name, spec };
      if (spec.startsWith('.')) {
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
        // Test files may use the repo's shared test fixtures (tests/fixtures): test-only code, never shipped.
        const fixtureImport = file.endsWith('.test.ts') && resolved.startsWith('tests/fixtures/');
        if (!fixtureImport && resolved !== owner.root && !resolved.startsWith(`${owner.root}/`)) {
          const target = ownerOf(resolved);
          violations.push({
            ...at,
            rule: 'deep-import',
            message: `relative import leaves project "${owner.name}"${target ? ` (into "${target.name}"; import ${target.packageName ?? 'its public entry'} instead)` : ''}`,
          });
        }
        continue;
      }
      if (spec.startsWith('/')) {
        violations.push({ ...at, rule: 'deep-import', message: 'absolute import path' });
        continue;
      }
      if (!spec.startsWith(INTERNAL_SCOPE)) continue; // node:*, npm packages
      const pkgName = spec.split('/').slice(0, 2).join('/');
      const target = byPackage.get(pkgName);
      if (!target) {
        violations.push({ ...at, rule: 'unknown-package', message: `imports unknown internal package ${pkgName}` });
        continue;
      }
      if (spec !== pkgName) {
        violations.push({ ...at, rule: 'deep-import', message: `deep import into "${target.name}"; import its public entry ${pkgName} instead` });
      }
      if (target === owner) continue; // a project may import its own public entry (e.g. in its tests)
      for (const v of ruleViolations(owner, target)) violations.push({ ...at, ...v });
      if (owner.dependencies && !owner.dependencies.includes(pkgName)) {
        violations.push({ ...at, rule: 'undeclared', message: `imports ${pkgName}, which ${owner.root}/package.json does not declare` });
      }
    }
  }
  return violations;
}

function ruleViolations(from, to) {
  const out = [];
  for (const rule of RULES) {
    if (!from.tags.includes(rule.tag)) continue;
    if (!rule.allow.some((t) => to.tags.includes(t))) {
      out.push({ rule: rule.tag, message: `"${from.name}" may not depend on "${to.name}" (tags: ${to.tags.join(', ') || 'none'}): ${rule.text}` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the real workspace

function walk(dir, onFile, onDir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      onDir?.(full);
      walk(full, onFile, onDir);
    } else if (e.isFile()) onFile(full);
  }
}

/** Reads projects (project.json + package.json) and source files under `libs/` and `services/` of `rootDir`. */
export function loadWorkspace(rootDir) {
  const projects = [];
  const files = {};
  const rel = (p) => path.relative(rootDir, p).split(path.sep).join('/');
  for (const top of ['libs', 'services']) {
    const base = path.join(rootDir, top);
    if (!existsSync(base) || !statSync(base).isDirectory()) continue;
    walk(base, (file) => {
      if (path.basename(file) === 'project.json') {
        const dir = path.dirname(file);
        const pj = JSON.parse(readFileSync(file, 'utf8'));
        let pkg = {};
        const pkgFile = path.join(dir, 'package.json');
        if (existsSync(pkgFile)) pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
        projects.push({
          name: pj.name ?? rel(dir),
          root: rel(dir),
          projectFile: rel(file),
          tags: Array.isArray(pj.tags) ? pj.tags : [],
          packageName: pkg.name,
          dependencies: existsSync(pkgFile)
            ? [...new Set([pkg.dependencies, pkg.devDependencies, pkg.peerDependencies].flatMap((d) => Object.keys(d ?? {})))]
            : undefined,
        });
      } else if (SOURCE_EXT.test(file) && !file.endsWith('.d.ts')) {
        files[rel(file)] = readFileSync(file, 'utf8');
      }
    });
  }
  return { projects, files };
}

export function formatViolation(v) {
  return `${v.file}${v.line ? `:${v.line}` : ''}: [${v.rule}] ${v.spec ? `'${v.spec}': ` : ''}${v.message}`;
}

function main() {
  const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const workspace = loadWorkspace(rootDir);
  const violations = checkBoundaries(workspace);
  const summary = `${workspace.projects.length} projects, ${Object.keys(workspace.files).length} source files`;
  if (violations.length) {
    for (const v of violations) console.error(formatViolation(v));
    console.error(`\ncheck-boundaries: ${violations.length} violation(s) in ${summary} (rules: scripts/check-boundaries.mjs, CONVENTIONS.md)`);
    process.exitCode = 1;
  } else {
    console.log(`check-boundaries: ok (${summary})`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
