/**
 * The dead-letter queue from a shell (the same operations as /api/admin/dead-letters):
 *   npm run dlq -- list [--limit 50]
 *   npm run dlq -- replay (--id MESSAGE_ID | --all)
 *   npm run dlq -- discard (--id MESSAGE_ID | --all)
 * Uses AMQP_URL and NAMESPACE like every service.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { createBroker, deadLetterOps } from '@lookup/messaging';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { id: { type: 'string' }, all: { type: 'boolean' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
const command = positionals[0];
if (values.help || !['list', 'replay', 'discard'].includes(command ?? '')) {
  console.log('usage: npm run dlq -- list [--limit N] | replay (--id ID | --all) | discard (--id ID | --all)');
  process.exit(values.help ? 0 : 2);
}
if (command !== 'list' && !values.id && !values.all) {
  console.error(`${command}: give --id MESSAGE_ID or --all`);
  process.exit(2);
}
const config = loadConfigOrExit();
const logger = createLogger({ service: 'dlq', level: 'warn' });
const broker = createBroker({ url: config.amqpUrl, namespace: config.namespace, logger, name: `${config.namespace}-dlq-cli`, maxAttempts: config.retryMaxAttempts, retryDelays: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs }, reconnectMaxMs: 2000 });
const timer = setTimeout(() => {
  console.error(`could not reach RabbitMQ at ${config.amqpUrl.replace(/\/\/[^@]*@/, '//***@')}`);
  process.exit(1);
}, 15_000);
await broker.start();
clearTimeout(timer);
const selector = values.id ? { messageId: values.id } : {};
const result = await broker.withConfirmChannel(async (channel) => {
  const ops = deadLetterOps(channel, broker.topology.queues.deadLetter);
  if (command === 'list') return ops.list(Number(values.limit ?? 50));
  if (command === 'replay') return { replayed: await ops.replay(selector) };
  return { discarded: await ops.discard(selector) };
});
console.log(JSON.stringify(result, null, 2));
await broker.close();
