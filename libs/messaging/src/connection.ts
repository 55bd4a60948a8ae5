import { EventEmitter } from 'node:events';
import amqp from 'amqplib';
import type { Channel, ConfirmChannel } from 'amqplib';
import type { Logger } from '@lookup/logging';
import { maskUrl } from '@lookup/config';
import { equalJitterBackoff } from '@lookup/contracts';
import { CONNECTION_DEFAULTS, RPC_CONNECTION_DEFAULTS } from './defaults.ts';
import { MessagingError } from './errors.ts';
import { coalesceWrites } from './socket-tuning.ts';
import { UrlRotation } from './url-rotation.ts';

export type Connection = Awaited<ReturnType<typeof amqp.connect>>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface AmqpConnectionOptions {
  /** One broker URL, or a cluster's nodes comma-separated (AMQP_URL): see UrlRotation for the order tried. */
  url: string;
  /** Index in `url`'s list of the node to try first (default: a random one, spreading clients over a cluster). */
  firstNode?: number;
  /** Connection name shown in the RabbitMQ console. */
  name: string;
  logger: Logger;
  /** First word of this connection's log lines ('rabbitmq', 'rpc'). */
  label: string;
  /** Defaults: CONNECTION_DEFAULTS (defaults.ts). A `heartbeat` in the URL wins over heartbeatSeconds. */
  heartbeatSeconds?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * The channel (re)creation hook: runs on every new connection before it counts as connected (create channels,
   * declare queues, start consumers). If it throws, or the connection is closed meanwhile, the connection is
   * closed and the manager tries again after a backoff.
   */
  setup: (connection: Connection) => Promise<void>;
}

/**
 * One self-healing AMQP connection: connects with backoff and jitter (retrying until it succeeds or close() is
 * called; with several broker URLs it tries the next node at once and backs off only after a whole round failed,
 * and a lost connection reconnects to the next node), asks for a heartbeat, tunes the socket (socket-tuning.ts),
 * runs `setup` on every new connection, and reconnects when the connection is lost. Emits 'connected' (after setup) and 'disconnected' (lost while not
 * closing). A channel's owner decides what a lost channel means: re-create it on the same connection
 * (RecoveringChannel) or start over on a new connection (`restart`). close() is idempotent.
 */
export class AmqpConnection extends EventEmitter {
  private current?: Connection;
  private closing = false;
  private connecting?: Promise<void>;
  private closed?: Promise<void>;
  private readonly log: Logger;
  private readonly nodes: UrlRotation;

  constructor(private readonly options: AmqpConnectionOptions) {
    super();
    this.log = options.logger;
    this.nodes = new UrlRotation(options.url, options.firstNode);
  }

  /** The live connection (after its setup), if any. */
  get connection(): Connection | undefined {
    return this.current;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * Connects (once; concurrent calls share the attempt). Resolves when connected and set up; rejects with
   * AMQP_CLOSED when close() is called first.
   */
  start(): Promise<void> {
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectLoop(): Promise<void> {
    const min = this.options.reconnectMinMs ?? CONNECTION_DEFAULTS.reconnectMinMs;
    const max = this.options.reconnectMaxMs ?? CONNECTION_DEFAULTS.reconnectMaxMs;
    while (!this.closing) {
      const url = this.nodes.current;
      try {
        if (await this.connectOnce(url)) return;
        break;
      } catch (err) {
        // The next node at once; a backoff only after every node failed in a row.
        const rounds = this.nodes.failed();
        const delay = rounds === 0 ? 0 : equalJitterBackoff(rounds - 1, min, max);
        const next = this.nodes.urls.length > 1 ? { next: maskUrl(this.nodes.current) } : {};
        this.log.warn({ err: (err as Error).message, retryInMs: delay, amqp: maskUrl(url), ...next }, `${this.options.label} connect failed`);
        if (delay > 0) await sleep(delay);
      }
    }
    throw new MessagingError('AMQP_CLOSED', `${this.options.label} connection closed while connecting`, false);
  }

  /** One attempt; false when close() was called meanwhile (the new connection is closed again). */
  private async connectOnce(node: string): Promise<boolean> {
    const url = new URL(node);
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.options.heartbeatSeconds ?? CONNECTION_DEFAULTS.heartbeatSeconds));
    const connection = await amqp.connect(url.toString(), { clientProperties: { connection_name: this.options.name }, noDelay: CONNECTION_DEFAULTS.noDelay });
    // Low latency, frames coalesced per event-loop turn (see socket-tuning.ts).
    coalesceWrites(connection);
    connection.on('error', (err: Error) => this.log.warn({ err: err.message }, `${this.options.label} connection error`));
    connection.on('blocked', (reason: string) => this.log.warn({ reason }, `${this.options.label} connection blocked`));
    try {
      // Adopted before setup, so the hook (and what it starts) sees the connection it works on as the current one.
      this.current = connection;
      await this.options.setup(connection);
      if (this.closing) {
        await connection.close().catch(() => undefined);
        return false;
      }
    } catch (err) {
      if (this.current === connection) this.current = undefined;
      await connection.close().catch(() => undefined);
      throw err;
    }
    connection.on('close', () => this.onConnectionLost(connection));
    this.nodes.succeeded();
    this.log.info({ amqp: maskUrl(node) }, `${this.options.label} connected`);
    this.emit('connected');
    return true;
  }

  private onConnectionLost(connection: Connection): void {
    if (this.current !== connection) return;
    this.current = undefined;
    if (this.closing) return;
    const lost = this.nodes.current;
    this.nodes.lost();
    this.log.warn({ amqp: maskUrl(lost), ...(this.nodes.urls.length > 1 ? { next: maskUrl(this.nodes.current) } : {}) }, `${this.options.label} connection lost; reconnecting`);
    this.emit('disconnected');
    void this.start().catch(() => undefined);
  }

  /**
   * Starts over on a new connection: closes `connection` if it is still the live one (its 'close' reconnects, with
   * backoff). For a channel lost while its connection lives, when the channel's owner does not re-create it itself.
   */
  restart(connection: Connection): void {
    if (this.closing || this.current !== connection) return;
    void connection.close().catch(() => undefined);
  }

  /** A new channel (a confirm channel for publishers) of `connection` with its 'error' listener. */
  async createChannel(connection: Connection, confirm: true, what: string): Promise<ConfirmChannel>;
  async createChannel(connection: Connection, confirm: boolean, what: string): Promise<Channel>;
  async createChannel(connection: Connection, confirm: boolean, what: string): Promise<Channel> {
    const channel: Channel = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
    channel.on('error', (err: Error) => this.log.warn({ err: err.message }, `${this.options.label} ${what} channel error`));
    return channel;
  }

  /** Closes the connection for good and stops reconnecting; safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      const connection = this.current;
      this.current = undefined;
      if (connection) await connection.close().catch(() => undefined);
    })();
    return this.closed;
  }
}

export interface RecoveringChannelOptions extends Omit<AmqpConnectionOptions, 'setup' | 'label'> {
  /** A confirm channel (publishers) or a plain one. */
  confirm: boolean;
  /** Declares the queue and starts the consumer on a fresh channel (on every connect and every re-created channel). */
  setup: (channel: Channel) => Promise<void>;
}

/**
 * One channel on its own self-healing connection (the resource RPC's): a channel the broker closes while the
 * connection lives (e.g. 406 PRECONDITION_FAILED for a message over RabbitMQ's max_message_size, or its consumer
 * cancelled because the queue was deleted) is re-created on the same connection with its queue and consumer,
 * without a process restart; if that fails, the connection is closed and re-opened. Emits 'connected' after setup,
 * 'disconnected' when the connection is lost and 'channel-restored' after a re-created channel.
 */
export class RecoveringChannel extends EventEmitter {
  channel?: Channel;
  private readonly amqp: AmqpConnection;
  /** Channel losses in a row (reset once a channel lived long enough), for the re-create backoff. */
  private channelLosses = 0;
  private channelOpenedAt = 0;
  private readonly reopenMinMs: number;
  private readonly reopenMaxMs: number;

  constructor(private readonly options: RecoveringChannelOptions) {
    super();
    this.reopenMinMs = options.reconnectMinMs ?? RPC_CONNECTION_DEFAULTS.reconnectMinMs;
    this.reopenMaxMs = options.reconnectMaxMs ?? RPC_CONNECTION_DEFAULTS.reconnectMaxMs;
    this.amqp = new AmqpConnection({
      url: options.url,
      firstNode: options.firstNode,
      name: options.name,
      logger: options.logger,
      label: 'rpc',
      heartbeatSeconds: options.heartbeatSeconds ?? RPC_CONNECTION_DEFAULTS.heartbeatSeconds,
      reconnectMinMs: this.reopenMinMs,
      reconnectMaxMs: this.reopenMaxMs,
      setup: async (connection) => this.adopt(await this.openChannel(connection)),
    });
    this.amqp.on('connected', () => this.emit('connected'));
    this.amqp.on('disconnected', () => {
      this.channel = undefined;
      this.emit('disconnected');
    });
  }

  get ready(): boolean {
    return this.amqp.connection !== undefined && this.channel !== undefined && !this.amqp.isClosing;
  }

  /** Connects (retrying until it succeeds or close() is called; then it resolves). */
  start(): Promise<void> {
    return this.amqp.start().catch((err) => {
      if (!this.amqp.isClosing) throw err;
    });
  }

  /** A new channel of `connection`, set up, watched from its first moment (a close during setup is not missed). */
  private async openChannel(connection: Connection): Promise<Channel> {
    const channel = await this.amqp.createChannel(connection, this.options.confirm, 'rpc');
    let closed = false;
    channel.on('close', () => {
      closed = true;
      this.onChannelClosed(connection, channel);
    });
    try {
      await this.options.setup(channel);
    } catch (err) {
      await channel.close().catch(() => undefined);
      throw err;
    }
    if (closed) throw new Error('the channel closed while it was being set up');
    return channel;
  }

  private adopt(channel: Channel): void {
    this.channel = channel;
    this.channelOpenedAt = Date.now();
  }

  private onChannelClosed(connection: Connection, channel: Channel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    // Closing the connection closes its channels first: then the connection's own handler reconnects.
    if (this.amqp.isClosing || this.amqp.connection !== connection) return;
    if (Date.now() - this.channelOpenedAt > RPC_CONNECTION_DEFAULTS.channelStableAfterMs) this.channelLosses = 0;
    const n = this.channelLosses++;
    const delay = n === 0 ? 0 : equalJitterBackoff(n - 1, this.reopenMinMs, this.reopenMaxMs);
    this.options.logger.warn({ retryInMs: delay }, 'rpc channel closed; re-creating it');
    setTimeout(() => void this.reopen(connection), delay);
  }

  private async reopen(connection: Connection): Promise<void> {
    if (this.amqp.isClosing || this.amqp.connection !== connection || this.channel) return;
    try {
      const channel = await this.openChannel(connection);
      if (this.amqp.isClosing || this.amqp.connection !== connection || this.channel) {
        await channel.close().catch(() => undefined);
        return;
      }
      this.adopt(channel);
      this.options.logger.info('rpc channel re-created');
      this.emit('channel-restored');
    } catch (err) {
      if (this.amqp.isClosing || this.amqp.connection !== connection) return;
      this.options.logger.warn({ err: (err as Error).message }, 'could not re-create the rpc channel; reconnecting');
      // Its 'close' handler starts the reconnect loop (with backoff).
      this.amqp.restart(connection);
    }
  }

  /** Closes a channel on purpose so that it is re-created (e.g. its consumer was cancelled by the broker). */
  recycle(channel: Channel, reason: string): void {
    if (this.channel !== channel) return;
    this.options.logger.warn({ reason }, 'rpc channel recycled');
    void channel.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.channel = undefined;
    await this.amqp.close();
  }
}
