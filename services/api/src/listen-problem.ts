/**
 * What to tell an operator when the API cannot listen on API_HOST:API_PORT, or undefined when the error is not a
 * configuration problem (then it is thrown as it is). main.ts logs it and exits 78 (EX_CONFIG).
 */
export function listenProblem(err: unknown, host: string, port: number): string | undefined {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return `API_PORT ${port} is in use (API_HOST ${host}): stop what listens there or set API_PORT`;
    case 'EACCES':
      return `API_PORT ${port} needs privileges this process does not have: use a port above 1023`;
    case 'EADDRNOTAVAIL':
      return `API_HOST ${host} is not an address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `API_HOST ${host} does not resolve to an address`;
    default:
      return undefined;
  }
}
