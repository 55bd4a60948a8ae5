// The dependency rules of CONVENTIONS.md ("Shape"), checked by dependency-cruiser over every .ts file under libs/
// and services/ (tests included): `npm run graph:check`, and tests/boundaries.test.ts in CI.
//
//   contracts -> config -> logging -> metrics -> infrastructure (messaging, store, coordination), dns, runtime
//             -> worker-kit, resource-kit -> services
//
// - a library depends only on the libraries its line in LAYERS lists ('*': any library), never on a service;
// - a service depends on libraries only, never on another service;
// - another project is reached through its package (`@lookup/x`, its one public entry src/index.ts): no deep import
//   `@lookup/x/...`, no relative import that leaves the importing project's folder (test files may use the repo's
//   shared test fixtures, tests/fixtures/, which never ship);
// - an imported package, internal or from npm, is declared in the importing project's package.json;
// - nothing unresolvable, no cycles, no file outside a project folder.
//
// A project is a folder libs/<name>, services/<name> or services/workers/<name> (each has a package.json). A new
// library needs one line in LAYERS; a new service needs nothing.
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');

/** Which libraries each library may import; '*' means any library. */
const LAYERS = {
  contracts: [],
  config: ['contracts'],
  logging: ['contracts', 'config'],
  metrics: ['contracts', 'config', 'logging'],
  messaging: ['contracts', 'config', 'logging', 'metrics'],
  store: ['contracts', 'config', 'logging', 'metrics'],
  coordination: ['contracts', 'config', 'logging'],
  dns: ['contracts', 'config', 'logging'],
  runtime: ['contracts', 'config', 'logging'],
  // Loaded with `--import` before a service (the start scripts); nothing imports it.
  telemetry: ['contracts', 'config'],
  'worker-kit': '*',
  'resource-kit': '*',
};

/** A service's folder and a project's folder, each captured as $1 (services/workers/<name> is not services/<name>). */
const SERVICE = '(services/workers/[^/]+|services/(?!workers/)[^/]+)';
const PROJECT = '(libs/[^/]+|services/workers/[^/]+|services/(?!workers/)[^/]+)';
const TEST_FILE = '\\.test\\.ts$';

/**
 * The internal packages each project's package.json declares, as rules: a project may import another project only
 * through a package it declares. Read from the package.json files next to this config, so nothing here lists them.
 */
function declaredInternalDependencies(root) {
  const projects = [];
  for (const base of ['libs', 'services', 'services/workers']) {
    const dir = path.join(root, base);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name, 'package.json');
      if (existsSync(file)) projects.push({ folder: `${base}/${name}`, manifest: JSON.parse(readFileSync(file, 'utf8')) });
    }
  }
  const folderOf = new Map(projects.map((p) => [p.manifest.name, p.folder]));
  return projects.map(({ folder, manifest }) => {
    const declared = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies })
      .map((name) => folderOf.get(name))
      .filter(Boolean);
    return {
      name: 'undeclared-internal-dependency',
      comment: `${folder} imports a project its package.json does not declare: add the package to its dependencies`,
      severity: 'error',
      from: { path: `^${folder}/` },
      to: { path: '^(libs|services)/', pathNot: `^(${[folder, ...declared].join('|')})/` },
    };
  });
}

const layerRules = Object.entries(LAYERS)
  .filter(([, allowed]) => allowed !== '*')
  .map(([name, allowed]) => ({
    name: `layer-${name}`,
    comment: allowed.length
      ? `libs/${name} may depend only on ${allowed.join(', ')} (LAYERS in .dependency-cruiser.cjs, CONVENTIONS.md)`
      : `libs/${name} depends on no other project (LAYERS in .dependency-cruiser.cjs, CONVENTIONS.md)`,
    severity: 'error',
    from: { path: `^libs/${name}/` },
    to: { path: '^libs/', pathNot: `^libs/(${[name, ...allowed].join('|')})/` },
  }));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'unlisted-library',
      comment: 'every library has a line in LAYERS (.dependency-cruiser.cjs) saying what it may depend on',
      severity: 'error',
      from: { path: '^libs/', pathNot: `^libs/(${Object.keys(LAYERS).join('|')})/` },
      to: {},
    },
    {
      name: 'library-to-service',
      comment: 'a library never depends on a service',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^services/' },
    },
    {
      name: 'service-to-service',
      comment: 'a service depends on libraries only, never on another service',
      severity: 'error',
      from: { path: `^${SERVICE}/` },
      to: { path: '^services/', pathNot: '^$1/' },
    },
    {
      name: 'deep-import',
      comment: "another project is imported through its public entry (@lookup/x, its src/index.ts), never a file inside it",
      severity: 'error',
      from: { path: `^${PROJECT}/` },
      to: { path: '^(libs|services)/', pathNot: ['^$1/', '^libs/[^/]+/src/index\\.ts$'] },
    },
    {
      name: 'deep-import',
      comment: "a package path `@lookup/x/...`: import @lookup/x, the library's one public entry",
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, path: '^@lookup/[^/]+/.' },
    },
    {
      name: 'relative-import-leaves-project',
      comment: 'a relative import stays inside its project folder: import another project through its package',
      severity: 'error',
      from: { path: `^${PROJECT}/`, pathNot: TEST_FILE },
      to: { dependencyTypes: ['local'], dependencyTypesNot: ['aliased-workspace'], pathNot: '^$1/' },
    },
    {
      name: 'relative-import-leaves-project',
      comment: "a test's relative import stays inside its project folder, or reaches the shared tests/fixtures/",
      severity: 'error',
      from: { path: `^${PROJECT}/.*${TEST_FILE}` },
      to: { dependencyTypes: ['local'], dependencyTypesNot: ['aliased-workspace'], pathNot: '^($1|tests/fixtures)/' },
    },
    ...declaredInternalDependencies(__dirname),
    {
      name: 'no-non-package-json',
      comment: "an npm package is imported only when the project's package.json (or the root one) declares it",
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to no file (an unknown @lookup/* package, a missing file)',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '^@lookup/[^/]+/.' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles, inside a project or across projects',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'outside-project',
      comment: 'every file under libs/ and services/ belongs to a project folder (libs/<name>, services/<name>, services/workers/<name>)',
      severity: 'error',
      from: { path: '^(libs|services)/', pathNot: `^${PROJECT}/` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The compiled copies (npm run build) are not sources.
    exclude: { path: '^(libs|services)/.*/dist/' },
    moduleSystems: ['es6', 'cjs'],
    // Type-only imports count too: they tie the layers together just the same.
    tsPreCompilationDeps: true,
    // Read the workspace root's package.json too: `workspaces` (so `@lookup/x` is known as a workspace package, not a
    // relative import) and the devDependencies every test may use (npm hoists them).
    combinedDependencies: true,
    // vitest's module mocks name a module as well.
    exoticRequireStrings: ['vi.mock', 'vi.doMock', 'vi.unmock', 'vi.doUnmock', 'vi.importActual', 'vi.importMock'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      // The TypeScript sources (`default`), not the compiled `lookup-dist` entries.
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
