import path from 'node:path';

/**
 * A process's default service.name, `lookup-<process>`, from the entry script node runs: the service's folder
 * (`services/api/...` -> lookup-api, `services/workers/geoip/...` -> lookup-geoip), else the script's base name.
 */
export function defaultServiceName(entry: string | undefined): string {
  const parts = (entry ?? '').split(/[\\/]/);
  const at = parts.lastIndexOf('services');
  if (at >= 0 && parts[at + 1] === 'workers' && parts[at + 2]) return `lookup-${parts[at + 2]}`;
  if (at >= 0 && parts[at + 1] && parts[at + 1] !== 'workers') return `lookup-${parts[at + 1]}`;
  const base = path.basename(entry ?? '', path.extname(entry ?? ''));
  return `lookup-${base || 'process'}`;
}
