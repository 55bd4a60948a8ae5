/**
 * The dead-letter queue from a shell (the same operations as /api/admin/dead-letters):
 *   npm run dlq -- list [--limit 50]
 *   npm run dlq -- replay (--id MESSAGE_ID | --all)
 *   npm run dlq -- discard (--id MESSAGE_ID | --all)
 * Uses AMQP_URL and NAMESPACE like every service (or --namespace NS). It declares nothing: a namespace that has no
 * dead-letter queue on this broker is reported (exit 1), never created. Usage errors exit 2.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit, maskUrl } from '@lookup/config';
import { deadLetterOps, topology } from '@lookup/messaging';
import { UsageError, checkQueue, connectAmqp, fail, failUsage, parseCount } from './cli-support.ts';

const USAGE = `usage: npm run dlq -- <command> [--namespace NS]
  list [--limit N]            show up to N dead letters (default 50, 1-10000); read-only
  replay (--id ID | --all)    re-publish to the exchange and routing key each first went to
  discard (--id ID | --all)   remove for good
The queue is <NAMESPACE>.dead-letter on AMQP_URL; NAMESPACE (default lookup) or --namespace NS says which suite.
Nothing is declared: a namespace with no dead-letter queue on this broker is reported, not created.`;

let command: string;
let values: { id?: string; all?: boolean; limit?: string; namespace?: string; help?: boolean };
let limit = 50;
try {
  const parsed = parseArgs({
    allowPositionals: true,
    strict: true,
    options: {
      id: { type: 'string' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      namespace: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  values = parsed.values;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const [first, ...rest] = parsed.positionals;
  if (first === undefined) throw new UsageError('no command given');
  if (!['list', 'replay', 'discard'].includes(first)) throw new UsageError(`unknown command '${first}'`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  command = first;
  if (command === 'list') {
    if (values.id !== undefined || values.all) throw new UsageError('list takes --limit, not --id or --all');
    limit = parseCount(values.limit, '--limit', 50, 1, 10_000);
  } else {
    if (values.limit !== undefined) throw new UsageError(`${command} takes --id or --all, not --limit`);
    if (values.id === undefined && !values.all) throw new UsageError(`${command}: give --id MESSAGE_ID or --all`);
    if (values.id !== undefined && values.all) throw new UsageError(`${command}: give --id or --all, not both`);
    if (values.id === '') throw new UsageError('--id needs a message id');
  }
} catch (err) {
  // parseArgs' own errors (an unknown flag, a flag without its value) are usage errors too.
  failUsage(`dlq: ${(err as Error).message}`, USAGE);
}

const config = loadConfigOrExit(values.namespace !== undefined ? { ...process.env, NAMESPACE: values.namespace } : process.env);
const queue = topology(config.namespace).queues.deadLetter;
process.stderr.write(`NAMESPACE ${config.namespace}: dead-letter queue ${queue} on ${maskUrl(config.amqpUrl)}\n`);

const connection = await connectAmqp(config.amqpUrl, `${config.namespace}-dlq-cli`);
try {
  const state = await checkQueue(connection, queue);
  if (!state) {
    fail(
      `no queue ${queue} on this broker: no suite with NAMESPACE ${config.namespace} has run here (or it was deleted). ` +
        'Set NAMESPACE (or --namespace) to the suite you mean; nothing was created.',
    );
  }
  const channel = await connection.createConfirmChannel();
  const ops = deadLetterOps(channel, queue);
  const selector = values.id !== undefined ? { messageId: values.id } : {};
  const result =
    command === 'list'
      ? await ops.list(limit)
      : command === 'replay'
        ? { replayed: await ops.replay(selector) }
        : { discarded: await ops.discard(selector) };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  await channel.close().catch(() => undefined);
} finally {
  await connection.close().catch(() => undefined);
}
