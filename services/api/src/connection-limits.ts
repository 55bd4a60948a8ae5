import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import type { Server } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { clientAddressKey } from './client-address.ts';

export interface ConnectionCapOptions {
  /** Open connections one client address (IPv6: its /64) may hold; 0 = no cap. */
  maxPerClient: number;
  /** Peers exempt from the cap: the proxies listed in TRUST_PROXY (every client arrives through them). */
  exempt?: readonly string[];
  logger: FastifyBaseLogger;
}

const WARN_INTERVAL_MS = 10_000;

/**
 * Caps the open connections of each client address: a connection beyond the cap is closed as soon as it is
 * accepted, before a byte is read, so one client cannot hold every socket (finding 7). The address is the TCP
 * peer (X-Forwarded-For does not exist yet at this point); peers listed in `exempt` are not capped.
 */
export function capConnectionsPerClient(server: Server, { maxPerClient, exempt = [], logger }: ConnectionCapOptions): void {
  if (maxPerClient <= 0) return;
  const exemptList = blockList(exempt);
  const open = new Map<string, number>();
  let lastWarn = 0;
  let refusedSinceWarn = 0;

  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress;
    if (exemptList && peer && isListed(exemptList, peer)) return;
    const key = clientAddressKey(peer);
    const count = (open.get(key) ?? 0) + 1;
    if (count > maxPerClient) {
      refusedSinceWarn += 1;
      const now = Date.now();
      if (now - lastWarn >= WARN_INTERVAL_MS) {
        logger.warn({ client: key, maxPerClient, refused: refusedSinceWarn }, 'connection refused: the client has too many open connections');
        lastWarn = now;
        refusedSinceWarn = 0;
      }
      socket.destroy();
      return;
    }
    open.set(key, count);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });
}

function blockList(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    if (!type) continue;
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

function isListed(list: BlockList, peer: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer);
  if (mapped) return list.check(mapped[1]!, 'ipv4');
  return isIPv4(peer) ? list.check(peer, 'ipv4') : isIPv6(peer) ? list.check(peer, 'ipv6') : false;
}
