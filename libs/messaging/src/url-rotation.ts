import { amqpUrlList } from '@lookup/config';

/**
 * The brokers a connection may use (AMQP_URL: one URL or a cluster's nodes, comma-separated) and which one is next.
 * A connection starts at `start` (by default a random node, so a cluster's clients spread over its nodes, as
 * RabbitMQ's clustering guide advises), moves to the next node after a failed attempt or a lost connection, and
 * wraps around. `failed()` says when a whole round of nodes has failed in a row: only then does the caller back off.
 */
export class UrlRotation {
  readonly urls: readonly string[];
  private index: number;
  /** Failed attempts since the last success (or the start). */
  private failures = 0;

  constructor(url: string, start?: number) {
    this.urls = Object.freeze(amqpUrlList(url));
    this.index = (start ?? Math.floor(Math.random() * this.urls.length)) % this.urls.length;
  }

  /** The node to try now. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /**
   * The current node failed (an attempt, or a live connection lost): moves to the next. Returns the number of
   * complete rounds that failed in a row (0 while some node of this round is still untried).
   */
  failed(): number {
    this.failures++;
    this.index = (this.index + 1) % this.urls.length;
    return this.failures % this.urls.length === 0 ? this.failures / this.urls.length : 0;
  }

  /** A live connection to the current node was lost: the reconnect starts at the next node, with a fresh round. */
  lost(): void {
    this.failures = 0;
    this.index = (this.index + 1) % this.urls.length;
  }

  /** A connection to the current node is up (and set up): the next failure starts a new round. */
  succeeded(): void {
    this.failures = 0;
  }
}
