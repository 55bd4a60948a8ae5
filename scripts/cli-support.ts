/**
 * What the operator CLIs (dlq.ts, namespace.ts) share: argument errors that print the usage and exit 2, a plain
 * AMQP connection that declares nothing, and a passive queue check that survives the channel a missing queue closes.
 */
import amqp, { type Channel, type ConfirmChannel } from 'amqplib';
import { amqpUrlList, maskUrl } from '@lookup/config';

export const EXIT_USAGE = 2;

export class UsageError extends Error {}

/** Prints `message` and the usage to stderr and exits 2 (EXIT_USAGE). */
export function failUsage(message: string, usage: string): never {
  process.stderr.write(`${message}\n\n${usage}\n`);
  process.exit(EXIT_USAGE);
}

/** Prints `message` to stderr and exits 1: the command was valid but could not be carried out. */
export function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** A whole number between min and max, or a UsageError naming the flag. */
export function parseCount(raw: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return Number(raw);
}

type Connection = Awaited<ReturnType<typeof amqp.connect>>;

/**
 * Connects to RabbitMQ (no topology is declared: nothing is created by connecting): to the first node of AMQP_URL's
 * list that answers, each within timeoutMs; or exits 1.
 */
export async function connectAmqp(url: string, name: string, timeoutMs = 10_000): Promise<Connection> {
  const problems: string[] = [];
  for (const node of amqpUrlList(url)) {
    let timer: NodeJS.Timeout | undefined;
    try {
      const connection = await Promise.race([
        amqp.connect(node, { clientProperties: { connection_name: name } }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
        }),
      ]);
      connection.on('error', () => undefined);
      return connection;
    } catch (err) {
      problems.push(`${maskUrl(node)}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return fail(`could not reach RabbitMQ at ${problems.join('; ')}`);
}

export interface QueueState {
  messageCount: number;
  consumerCount: number;
}

/**
 * Checks passively whether `queue` exists (declares nothing): its counts, or undefined when it does not exist. A
 * missing queue closes the channel it was checked on (404), so each check uses a channel of its own when needed.
 */
export async function checkQueue(connection: Connection, queue: string): Promise<QueueState | undefined> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    const { messageCount, consumerCount } = await channel.checkQueue(queue);
    await channel.close().catch(() => undefined);
    return { messageCount, consumerCount };
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    // 405 RESOURCE_LOCKED: an exclusive queue of another connection (a running process): it exists.
    if ((err as { code?: number }).code === 405) return { messageCount: 0, consumerCount: 1 };
    throw err;
  }
}

/** Checks passively whether `exchange` exists (declares nothing). */
export async function checkExchange(connection: Connection, exchange: string): Promise<boolean> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkExchange(exchange);
    await channel.close().catch(() => undefined);
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

export type { Channel, ConfirmChannel, Connection };
