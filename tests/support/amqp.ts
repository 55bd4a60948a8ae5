import amqp from 'amqplib';
import type { GetMessage } from 'amqplib';
import { AMQP_URL } from './env.ts';

/** A raw amqplib client for tests: publish anything, read queues directly, never through the code under test. */
export async function rawAmqp() {
  const connection = await amqp.connect(AMQP_URL);
  const channel = await connection.createConfirmChannel();
  channel.on('error', () => undefined);
  return {
    channel,
    async publish(exchange: string, routingKey: string, body: unknown, props: amqp.Options.Publish = {}) {
      const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      channel.publish(exchange, routingKey, content, { persistent: true, contentType: 'application/json', ...props });
      await channel.waitForConfirms();
    },
    async sendToQueue(queue: string, body: unknown, props: amqp.Options.Publish = {}) {
      const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      channel.sendToQueue(queue, content, { persistent: true, ...props });
      await channel.waitForConfirms();
    },
    /** Takes every message currently in a queue (acking them), waiting up to timeoutMs for at least `min`. */
    async drain(queue: string, min = 0, timeoutMs = 10_000): Promise<GetMessage[]> {
      const out: GetMessage[] = [];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const msg = await channel.get(queue, { noAck: true });
        if (msg) {
          out.push(msg);
          continue;
        }
        if (out.length >= min || Date.now() > deadline) return out;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await connection.close().catch(() => undefined);
    },
  };
}
