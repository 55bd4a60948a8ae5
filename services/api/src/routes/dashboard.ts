import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { NotFound } from '../http-errors.ts';

/**
 * The operator dashboard: one HTML page and its vanilla JS and CSS modules from services/api/dashboard/ (copied to
 * dist/dashboard/ by the build), read once at start and served as they are. No build step, nothing inline, so the
 * API's strict Content-Security-Policy holds; every call the page makes goes to this API (README, Dashboard).
 */
const ASSET_DIR = new URL('../../dashboard/', import.meta.url);
const ASSETS: Record<string, string> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'prom-text.js': 'text/javascript; charset=utf-8',
  'sse.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

export function registerDashboardRoutes(app: FastifyInstance): void {
  const page = readFileSync(new URL('index.html', ASSET_DIR));
  const files = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(new URL(name, ASSET_DIR)) }]));

  app.get('/dashboard', { schema: { hide: true } }, (_request, reply) =>
    reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(page),
  );
  app.get<{ Params: { file: string } }>('/dashboard/:file', { schema: { hide: true } }, (request, reply) => {
    const asset = files.get(request.params.file);
    if (!asset) throw new NotFound(request.method, request.url.split('?')[0] ?? '/');
    return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });
}
