import type { FastifyInstance } from 'fastify';
import type { CallbackStatus } from '@lookup/contracts';
import { parseJobId } from '../errors.ts';
import { JobNotFound, StoreUnavailable } from '../http-errors.ts';
import { CallbackStatusRef, JOB_ROUTE_ERRORS, JobIdParamsSchema } from '../schemas.ts';

export interface CallbackStatusSource {
  /** The job's callback and its delivery attempts; undefined when the job does not exist. */
  status(jobId: string): Promise<CallbackStatus | undefined>;
}

/** GET /api/lookup/{jobId}/callbacks: the job's completion callback and every delivery attempt so far. */
export function registerCallbackRoutes(app: FastifyInstance, deps: { callbacks: CallbackStatusSource }): void {
  app.get<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId/callbacks',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: "A job's completion callback and its delivery attempts",
        description:
          'The callback asked for at submission (null: none) and its delivery: `state` is none, waiting (the job has ' +
          'not ended), pending, retrying, delivered, dead-lettered (every attempt failed; CALLBACK_MAX_ATTEMPTS) or ' +
          'skipped (the job ended with an event the callback did not ask for). Each attempt has its time, the ' +
          "receiver's HTTP status (null: no answer), ok, and the error. `deliveryId` is the X-Lookup-Delivery header, " +
          'the same on every attempt.',
        params: JobIdParamsSchema,
        response: { 200: { ...CallbackStatusRef, description: 'The callback and its attempts' }, ...JOB_ROUTE_ERRORS },
      },
    },
    async (request, reply) => {
      const jobId = parseJobId(request);
      let status;
      try {
        status = await deps.callbacks.status(jobId);
      } catch (err) {
        request.log.error({ err, jobId }, 'could not read the callback record; answering 503');
        throw new StoreUnavailable();
      }
      if (!status) throw new JobNotFound(jobId);
      return reply.header('X-Job-Id', jobId).send(status);
    },
  );
}

/** Builds the status from the job's callback spec and the delivery record (main.ts, with the real stores). */
export function callbackStatusSource(
  getCallback: (jobId: string) => Promise<CallbackStatus['callback'] | undefined>,
  getRecord: (jobId: string) => Promise<{ state: CallbackStatus['state'] | undefined; deliveryId: string | null; attempts: CallbackStatus['attempts'] }>,
): CallbackStatusSource {
  return {
    async status(jobId) {
      const [callback, record] = await Promise.all([getCallback(jobId), getRecord(jobId)]);
      if (callback === undefined) return undefined;
      if (callback === null) return { jobId, callback: null, deliveryId: null, state: 'none', attempts: [] };
      return { jobId, callback, deliveryId: record.deliveryId, state: record.state ?? 'waiting', attempts: record.attempts };
    },
  };
}
