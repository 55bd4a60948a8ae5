import type { Socket } from 'node:net';

/**
 * Low latency without a packet per frame. The connection runs with TCP_NODELAY (Nagle's algorithm would hold a
 * frame written while an earlier one is unacknowledged until the broker's delayed ACK, ~40 ms), and every
 * write of one event-loop turn is corked and sent together in the check phase: what amqplib writes as separate
 * frames (a publish is three) leaves as one segment, at once.
 *
 * Reaches into amqplib's connection for its socket; if that ever changes, it does nothing.
 */
export function coalesceWrites(channelModel: unknown): void {
  const socket = (channelModel as { connection?: { stream?: unknown } }).connection?.stream as Socket | undefined;
  if (!socket || typeof socket.cork !== 'function' || typeof socket.write !== 'function') return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const flush = () => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  (socket as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return write(...args);
  };
}
