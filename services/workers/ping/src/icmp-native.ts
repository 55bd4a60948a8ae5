import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { IpFamily } from './icmp-packet.ts';
import type { IcmpMessageHandler, IcmpSocket, OpenIcmpSocket } from './pinger.ts';

/** The native addon's interface (native/icmp.c). */
export interface IcmpAddon {
  open(family: IpFamily, onMessage: IcmpMessageHandler, mode?: SocketMode): { handle: unknown; kind: 'dgram' | 'raw'; ident: number };
  send(handle: unknown, packet: Buffer, address: string): 0 | string;
  close(handle: unknown): void;
}

/** Which socket types to try: datagram (unprivileged) then raw, or only one of them. */
export type SocketMode = 'auto' | 'dgram' | 'raw';

// scripts/build.mjs compiles native/icmp.c to <package>/dist/native/icmp.node. From dist/src/ (the running
// service) that is ../native/; from src/ (tests, tsx) it is ../dist/native/.
const CANDIDATES = ['../native/icmp.node', '../dist/native/icmp.node'];

/** Loads the compiled addon; throws an Error saying why when it is not there or does not load. */
export function loadIcmpAddon(): IcmpAddon {
  const paths = CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = paths.find((p) => existsSync(p));
  if (!found) throw new Error(`the ICMP addon is not built (no ${paths.join(' or ')}; npm run build compiles it with a C compiler)`);
  try {
    return createRequire(import.meta.url)(found) as IcmpAddon;
  } catch (err) {
    throw new Error(`the ICMP addon at ${found} does not load: ${(err as Error).message}`, { cause: err });
  }
}

/** An OpenIcmpSocket over the addon. */
export function nativeSocketOpener(addon: IcmpAddon, mode: SocketMode = 'auto'): OpenIcmpSocket {
  return (family, onMessage): IcmpSocket => {
    const { handle, kind, ident } = addon.open(family, onMessage, mode);
    return {
      kind,
      ident,
      send: (packet, address) => addon.send(handle, packet, address),
      close: () => addon.close(handle),
    };
  };
}

/** Loads the addon and returns its socket opener (the Ping worker's default). */
export function loadNativeIcmp(): OpenIcmpSocket {
  return nativeSocketOpener(loadIcmpAddon());
}
