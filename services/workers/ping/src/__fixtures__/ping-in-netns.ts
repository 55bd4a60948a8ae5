// Run by icmp-native.test.ts inside a private network namespace (unshare -n) where net.ipv4.ping_group_range
// lets this process open unprivileged ICMP datagram sockets, as the ping-worker container does. Pings the
// namespace's own loopback through IcmpPinger and prints the outcome as one JSON line.
import { loadIcmpAddon, nativeSocketOpener, type SocketMode } from '../icmp-native.ts';
import { IcmpPinger } from '../pinger.ts';

const pinger = new IcmpPinger(nativeSocketOpener(loadIcmpAddon(), (process.argv[2] ?? 'auto') as SocketMode));
const options = { count: 2, timeoutMs: 2000, intervalMs: 50, signal: new AbortController().signal };
const out = {
  kind4: pinger.open(4),
  v4: await pinger.ping('127.0.0.1', 4, options),
  kind6: pinger.open(6),
  v6: await pinger.ping('::1', 6, options),
};
pinger.close();
console.log(JSON.stringify(out));
