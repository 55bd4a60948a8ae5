/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): top self-time functions and self time by package.
 *
 *   node --import tsx bench/profile-summary.ts /tmp/prof [--top 15]
 *
 * Reads every *.cpuprofile under the directory; a subdirectory name (bench --cpu-prof DIR writes DIR/<service>/)
 * labels its profiles.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.cpuprofile') ? [p] : [];
  });
}

/** Where a function lives: an npm package, node's internals, the repo's own code, or V8's pseudo-frames. */
export function category(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  const repo = /\/(libs|services)\/([^/]+(?:\/[^/]+)?)\/src\//.exec(url);
  if (repo) return `${repo[1]}/${repo[2]!.replace(/\/src$/, '')}`;
  return url.replace(/^file:\/\//, '');
}

export function summarise(profile: CpuProfile, top: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;
  const fns = new Map<string, number>();
  const cats = new Map<string, number>();
  for (const [id, t] of self) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') continue;
    const where = cf.url ? `${cf.url.replace(/^file:\/\/.*?\/(node_modules|libs|services)\//, '$1/').replace(/^file:\/\//, '')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}  ${where}`;
    fns.set(key, (fns.get(key) ?? 0) + t);
    const c = category(cf.url, cf.functionName);
    cats.set(c, (cats.get(c) ?? 0) + t);
  }
  const pct = (t: number) => (busy > 0 ? (100 * t) / busy : 0);
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, t]) => ({ name: k, ms: Math.round(t / 1000), pct: Math.round(pct(t) * 10) / 10 }));
  return { wallMs: Math.round((profile.endTime - profile.startTime) / 1000), busyMs: Math.round(busy / 1000), functions: sorted(fns), packages: sorted(cats) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  const topIdx = process.argv.indexOf('--top');
  const top = topIdx > 0 ? Number(process.argv[topIdx + 1]) : 15;
  if (!dir) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <dir with .cpuprofile files> [--top N]\n');
    process.exit(2);
  }
  for (const file of files(dir).sort()) {
    const label = relative(dir, dirname(file)) || basename(file);
    const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top);
    process.stdout.write(`\n## ${label}  (${basename(file)}): ${s.busyMs} ms on CPU of ${s.wallMs} ms profiled\n\n`);
    process.stdout.write('| self % of busy | self ms | function | \n|---:|---:|---|\n');
    for (const f of s.functions) process.stdout.write(`| ${f.pct} | ${f.ms} | \`${f.name.trim()}\` |\n`);
    process.stdout.write('\nBy package / area: ' + s.packages.map((p) => `${p.name} ${p.pct}%`).join(', ') + '\n');
  }
}
