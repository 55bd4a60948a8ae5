import { JOB_INDEX_MEMBER } from '@lookup/store';
import { InvalidCursor } from './http-errors.ts';

/**
 * The job listing's opaque cursor: the listing index member to continue after (@lookup/store job-index.ts), with a
 * version prefix, in base64url. Clients pass it back unchanged; anything else is a 400 INVALID_CURSOR.
 */
const PREFIX = 'v1:';

export function encodeJobCursor(member: string): string {
  return Buffer.from(PREFIX + member, 'utf8').toString('base64url');
}

/** The index member a cursor carries; throws InvalidCursor for anything this API did not hand out. */
export function decodeJobCursor(cursor: string): string {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new InvalidCursor();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const member = text.startsWith(PREFIX) ? text.slice(PREFIX.length) : '';
  if (!JOB_INDEX_MEMBER.test(member)) throw new InvalidCursor();
  return member;
}
