import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { serviceName, type JobDocument, type ServiceResult } from '@lookup/contracts';
import { JOB_EVENT_ID, eventIdAfter, type JobEvent } from '@lookup/store';
import type { ApiDeps } from '../deps.ts';
import type { JobEventSource } from '../job-events.ts';
import { parseJobId } from '../errors.ts';
import { JobNotFound, StoreUnavailable, ValidationFailed } from '../http-errors.ts';
import { API_ERROR_RESPONSES, JOB_ROUTE_ERRORS, JobIdParamsSchema, errorResponse } from '../schemas.ts';

const MAX_STREAM_MS = 10 * 60_000;
/** How many jobs one `GET /api/lookup/events?jobs=…` may follow. */
export const MAX_FOLLOWED_JOBS = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Before the first event of a job (a fresh connect resumes from here). */
const START = '0-0';
const isFinal = (doc: JobDocument) => doc.status === 'Completed' || doc.status === 'Cancelled';

export interface JobStreamDeps {
  jobs: Pick<ApiDeps['jobs'], 'getDocument' | 'getResults'>;
  events: JobEventSource;
  /** A `: ping` comment after this long without an event (EVENTS_HEARTBEAT_MS). */
  heartbeatMs: number;
}

const EVENTS_DESCRIPTION = [
  'A `text/event-stream`. Every event has an `id:`; a client that reconnects with that id in `Last-Event-ID` gets',
  'exactly the events after it (EventSource does this by itself). Events, in order:',
  '',
  '- `status` (only on a fresh connect to an unfinished job): the job document, as GET /api/lookup/{jobId} answers.',
  '- `result`, one per service, as its outcome is recorded (outcomes already recorded come first): the service\'s',
  '  result as in the document\'s `results[]`, plus `jobId`.',
  '- `completed` (the job is Completed, timed-out services included) or `cancelled`: the final job document; then',
  '  the stream ends.',
  '',
  'A comment line `: ping` is sent after EVENTS_HEARTBEAT_MS (15 s) without an event. A reconnect after the final',
  'event is answered 204 (EventSource then stops reconnecting). Example:',
  '',
  '```',
  'event: status',
  'data: {"jobId":"3f1c…","status":"Processing","completionPercentage":0,"results":[],…}',
  'id: 0-0',
  '',
  'event: result',
  'data: {"jobId":"3f1c…","serviceType":"GeoIP","status":"Succeeded","success":true,"data":{…},…}',
  'id: 1764576000123-0',
  '',
  ': ping',
  '',
  'event: completed',
  'data: {"jobId":"3f1c…","status":"Completed","completionPercentage":100,"results":[…],…}',
  'id: 1764576000456-0',
  '```',
].join('\n');

interface Followed {
  jobId: string;
  /** Id of the last event sent (START before any). */
  pos: string;
  done: boolean;
  /** The Last-Event-ID position this connection resumed from (undefined on a fresh connect). */
  resumedAt: string | undefined;
  /** Woken since the last read. */
  dirty: boolean;
  /**
   * Whether the next read is of the stream (XRANGE): first read, a bare wake-up (reconnect, broker notification),
   * a heartbeat. Otherwise the wake-ups' announced entries (`announced`) are the stream's next entries.
   */
  reread: boolean;
  /** Entries announced by wake-up messages since the last read, oldest first (those at or before `pos` are old). */
  announced: JobEvent[];
  /**
   * Whether the next read with nothing new also checks whether the job finished (first read, and after a wake-up
   * rather than a heartbeat): a job whose stream lacks its end (one finished before streams existed) still ends.
   */
  checkEnd: boolean;
}

/**
 * The event streams: `GET /api/lookup/{jobId}/events` for one job and `GET /api/lookup/events?jobs=…` for many.
 * Events are the job's Redis Stream entries (job-events.ts): replayed from the Last-Event-ID, then followed on
 * each wake-up; the data comes from the job document read after the entries (an entry exists only once its
 * outcome is recorded, in the same script), so no event is lost, repeated or ahead of its data.
 */
export function registerJobStreamRoute(app: FastifyInstance, deps: JobStreamDeps): void {
  const { jobs, events, heartbeatMs } = deps;
  // Open streams would hold a shutdown for up to MAX_STREAM_MS: end them first (clients reconnect elsewhere).
  const open = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const end of [...open]) end();
  });

  app.get<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId/events',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Stream a job: each service result as it is recorded, then the end (server-sent events)',
        description: EVENTS_DESCRIPTION + '\n\nThe cheap alternative to polling GET /api/lookup/{jobId}.',
        params: JobIdParamsSchema,
        headers: Type.Object({
          'last-event-id': Type.Optional(Type.String({ description: 'The `id:` of the last event received (`<ms>-<seq>`)' })),
        }),
        produces: ['text/event-stream'],
        response: {
          200: { description: 'The event stream (text/event-stream): status, result per service, completed or cancelled', type: 'string' },
          204: { description: 'Resumed after the final event: nothing more will come', type: 'null' },
          ...JOB_ROUTE_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const jobId = parseJobId(request);
      const last = lastEventId(request);
      if (last !== undefined && !JOB_EVENT_ID.test(last)) {
        throw new ValidationFailed('headers', [`Last-Event-ID must be an event id of this stream (<ms>-<seq>), not '${truncate(last)}'`], 'Invalid Last-Event-ID');
      }
      return stream(request, reply, [jobId], last === undefined ? undefined : [last], (f) => f[0]!.pos);
    },
  );

  app.get<{ Querystring: { jobs: string } }>(
    '/api/lookup/events',
    {
      schema: {
        tags: ['lookup'],
        summary: `Stream up to ${MAX_FOLLOWED_JOBS} jobs at once (server-sent events)`,
        description:
          `The events of GET /api/lookup/{jobId}/events for every job in \`jobs\` (comma-separated ids, at most ` +
          `${MAX_FOLLOWED_JOBS}), interleaved as they happen; each event's data carries its \`jobId\`. The stream ends ` +
          'when every job has sent `completed` or `cancelled`. An event\'s `id:` is composite: the id of the last event ' +
          'sent for each job, comma-separated in the order of `jobs` (`0-0` for none yet), e.g. ' +
          '`id: 1764576000123-0,0-0`; send it back in Last-Event-ID with the same `jobs` to resume.\n\n' +
          EVENTS_DESCRIPTION,
        querystring: Type.Object({
          jobs: Type.String({ minLength: 1, maxLength: MAX_FOLLOWED_JOBS * 37, description: 'Job ids, comma-separated' }),
        }),
        headers: Type.Object({
          'last-event-id': Type.Optional(Type.String({ description: 'The composite `id:` of the last event received' })),
        }),
        produces: ['text/event-stream'],
        response: {
          200: { description: 'The event stream (text/event-stream) of every job, each event with its jobId', type: 'string' },
          204: { description: 'Resumed after every job\'s final event: nothing more will come', type: 'null' },
          400: errorResponse('`jobs` is not a list of distinct job ids, has too many, or Last-Event-ID does not match it'),
          404: errorResponse('One of the jobs does not exist (unknown, or expired)'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const ids = request.query.jobs.split(',').map((s) => s.trim().toLowerCase());
      const bad = ids.find((id) => !UUID.test(id));
      if (bad !== undefined) throw new ValidationFailed('querystring', [`jobs: '${truncate(bad)}' is not a job id`], 'Invalid jobs');
      if (ids.length > MAX_FOLLOWED_JOBS) throw new ValidationFailed('querystring', [`jobs: at most ${MAX_FOLLOWED_JOBS} jobs per stream, not ${ids.length}`], 'Invalid jobs');
      if (new Set(ids).size !== ids.length) throw new ValidationFailed('querystring', ['jobs: a job is listed twice'], 'Invalid jobs');
      const last = lastEventId(request);
      let positions: string[] | undefined;
      if (last !== undefined) {
        positions = last.split(',');
        if (positions.length !== ids.length || !positions.every((p) => JOB_EVENT_ID.test(p))) {
          throw new ValidationFailed('headers', [`Last-Event-ID must be an id of this stream: ${ids.length} event ids (<ms>-<seq>), comma-separated`], 'Invalid Last-Event-ID');
        }
      }
      return stream(request, reply, ids, positions, (f) => f.map((x) => x.pos).join(','));
    },
  );

  async function stream(
    request: FastifyRequest,
    reply: FastifyReply,
    jobIds: string[],
    resumeFrom: string[] | undefined,
    idOf: (followed: Followed[]) => string,
  ): Promise<void> {
    const followed: Followed[] = jobIds.map((jobId, i) => ({
      jobId,
      pos: resumeFrom?.[i] ?? START,
      resumedAt: resumeFrom?.[i],
      done: false,
      dirty: true,
      reread: true,
      announced: [],
      checkEnd: true,
    }));
    let wake: () => void = () => undefined;
    const unsubscribes: (() => void)[] = [];
    const unsubscribeAll = () => {
      for (const u of unsubscribes.splice(0)) u();
    };
    // Subscribe before the first read, so an event between the read and the subscription is not missed.
    let first: string;
    try {
      // Settled, not all: every subscription that did succeed is in `unsubscribes` before a failure is thrown.
      const subscribed = await Promise.allSettled(
        followed.map((f) =>
          events.subscribe(f.jobId, (announced) => {
            f.dirty = true;
            if (announced) f.announced.push(...announced);
            else {
              f.reread = true;
              f.checkEnd = true;
            }
            wake();
          }),
        ),
      );
      for (const r of subscribed) if (r.status === 'fulfilled') unsubscribes.push(r.value);
      const failed = subscribed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      // The first read: each job's stream, then its document (the status frame, and the data of the events).
      const read = await Promise.all(followed.map((f) => readNew(f)));
      const missing = read.findIndex((r) => !r.doc);
      if (missing >= 0) {
        unsubscribeAll();
        throw new JobNotFound(jobIds[missing]!);
      }
      // A fresh connect to an unfinished job starts with its document (as it was before any event sent here).
      first = resumeFrom ? '' : followed.map((f, i) => (read[i]!.status ? frame('status', read[i]!.status, idOf(followed)) : '')).join('');
      first += framesOf(followed, read);
    } catch (err) {
      unsubscribeAll();
      if (err instanceof JobNotFound) throw err;
      request.log.error({ err, jobIds }, 'could not read the job events; answering 503');
      throw new StoreUnavailable();
    }
    if (resumeFrom && first === '' && followed.every((f) => f.done)) {
      // Resumed after the end: 204 tells EventSource not to reconnect again.
      unsubscribeAll();
      return reply.code(204).send();
    }

    reply.hijack();
    const res = reply.raw;
    // Headers already set on the reply (rate-limit counters) go out with the stream.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value as string | number | string[]);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // No explicit `Connection: keep-alive`: HTTP/1.1 keeps the connection by default, and a client that sent
      // `Connection: close` gets it closed after the stream (forcing keep-alive held it open until the
      // keep-alive timeout).
      'x-accel-buffering': 'no',
      ...(jobIds.length === 1 ? { 'x-job-id': jobIds[0]! } : {}),
    });
    let closed = false;
    const end = () => {
      closed = true;
      wake();
    };
    request.raw.on('close', end);
    open.add(end);
    const started = Date.now();
    // The final event and the end of the stream leave in one write (one TCP segment for the client to read).
    const send = (text: string) => {
      if (followed.every((f) => f.done)) res.end(text);
      else if (text) res.write(text);
    };
    try {
      send(first);
      while (!res.writableEnded && !closed && !closing && Date.now() - started < MAX_STREAM_MS) {
        if (!followed.some((f) => f.dirty && !f.done)) {
          const heard = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), heartbeatMs);
            wake = () => {
              clearTimeout(timer);
              resolve(true);
            };
          });
          wake = () => undefined;
          if (closed || closing) break;
          if (!heard) {
            res.write(': ping\n\n');
            // A safety net under the wake-ups (a lost notification): re-read every open job's stream now and then.
            for (const f of followed) f.dirty = true;
            continue;
          }
        }
        let text: string;
        try {
          text = await pumpAll();
        } catch (err) {
          request.log.warn({ err, jobIds }, 'could not read the job events for its stream; trying again at the next event or heartbeat');
          continue;
        }
        if (closed) break;
        send(text);
      }
    } finally {
      unsubscribeAll();
      open.delete(end);
      if (!res.writableEnded) res.end();
    }

    /** Reads every woken job's new events; returns their frames. */
    async function pumpAll(): Promise<string> {
      const woken = followed.filter((f) => f.dirty && !f.done);
      return framesOf(woken, await Promise.all(woken.map((f) => readNew(f))));
    }

    /** The frames of what was read for each of `some` (in the same order); advances their positions. */
    function framesOf(some: Followed[], read: NewEvents[]): string {
      let text = '';
      some.forEach((f, i) => {
        const { events: evs, doc, results } = read[i]!;
        for (const ev of evs) {
          if (f.done) break;
          f.pos = ev.id;
          if (ev.type === 'result') {
            const name = serviceName(ev.service);
            const result = (results ?? doc?.results)?.find((r) => r.serviceType === name);
            if (!result) {
              request.log.warn({ jobId: f.jobId, service: name }, 'an event names a result the job does not show; skipped');
              continue;
            }
            text += frame('result', { jobId: f.jobId, ...result }, idOf(followed));
          } else {
            f.done = true;
            text += frame(ev.type, doc, idOf(followed));
          }
        }
      });
      return text;
    }

    /**
     * A job's events after its position, with what their frames show, read after them (so it has every outcome
     * they name): the outcomes of `result` events alone (`results`), or the job's document when one is final or
     * the stream was re-read. Following announced entries (see job-events.ts) needs no XRANGE. Nothing new in the
     * stream while the job is finished means: resumed after its end, or a job whose stream lacks its end (finished
     * before streams existed): then its final document is the last event (id 0-0 if none before).
     */
    async function readNew(f: Followed): Promise<NewEvents> {
      f.dirty = false;
      const announced = f.announced.splice(0);
      if (!f.reread) {
        // Only what comes after the position, each entry once (overlapping announcements, or ones a read covered).
        let last = f.pos;
        const evs = announced.filter((e) => eventIdAfter(e.id, last) && ((last = e.id), true));
        if (evs.length === 0) return { events: evs };
        if (!jobs.getResults || evs.some((e) => e.type !== 'result')) return { events: evs, doc: await jobs.getDocument(f.jobId) };
        return { events: evs, results: await jobs.getResults(f.jobId, evs.map((e) => (e.type === 'result' ? e.service : 0))) };
      }
      f.reread = false;
      // Announcements that come while the stream is read are kept for the next read (those it covers are skipped).
      let evs = await events.read(f.jobId, f.pos);
      if (evs.length === 0 && !f.checkEnd) return { events: evs };
      f.checkEnd = false;
      const doc = await jobs.getDocument(f.jobId);
      // For the status frame of a fresh connect: the document, when the job is not finished.
      const status = doc && !isFinal(doc) ? doc : undefined;
      if (evs.length > 0 || !doc || !isFinal(doc)) return { events: evs, doc, status };
        // Finished: its final entry exists (written with the final state); read again in case it came meanwhile.
        evs = await events.read(f.jobId, f.pos);
        if (evs.length > 0) return { events: evs, doc };
      // Resumed, nothing new since: its end was sent before this connection.
      if (f.resumedAt === f.pos) {
        f.done = true;
        return { events: [], doc };
      }
      return { events: [{ id: f.pos, type: doc.status === 'Cancelled' ? 'cancelled' : 'completed' }], doc };
    }
  }
}

/** What one read found for a job: its new events and what their frames show. */
interface NewEvents {
  events: JobEvent[];
  /** The job's document, read after the events (final events, a re-read of the stream). */
  doc?: JobDocument;
  /** The outcomes of the `result` events alone, read after them (announced results). */
  results?: ServiceResult[];
  /** The document when the stream was re-read and the job is not finished (the first read's `status` frame). */
  status?: JobDocument;
}

/** One event: `event:` and `data:` first (what the existing clients read), then its `id:`. */
function frame(event: string, data: unknown, id: string): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\nid: ${id}\n\n`;
}

function lastEventId(request: FastifyRequest): string | undefined {
  const raw = request.headers['last-event-id'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

const truncate = (s: string) => (s.length > 60 ? `${s.slice(0, 60)}…` : s);
