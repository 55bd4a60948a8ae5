import { describe, expect, it } from 'vitest';
import { jobIndexMember } from '@lookup/store';
import { decodeJobCursor, encodeJobCursor } from './job-cursor.ts';
import { InvalidCursor } from './http-errors.ts';

describe('job listing cursor', () => {
  const member = jobIndexMember('2026-12-01T10:00:00.123Z', '7c97f16d-c8dc-4edd-a4d6-d13c9db6cd1e');

  it('round-trips an index member and is URL-safe', () => {
    const cursor = encodeJobCursor(member);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeJobCursor(cursor)).toBe(member);
    expect(member).toBe(`${String(Date.parse('2026-12-01T10:00:00.123Z')).padStart(16, '0')}:7c97f16d-c8dc-4edd-a4d6-d13c9db6cd1e`);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/c=='],
    ['no version prefix', Buffer.from(member).toString('base64url')],
    ['another version', Buffer.from(`v2:${member}`).toString('base64url')],
    ['a job id that is not a UUID', Buffer.from('v1:0000001764583200123:not-a-uuid').toString('base64url')],
    ['a bare timestamp', Buffer.from('v1:0001764583200123').toString('base64url')],
    ['a lex bound injection', Buffer.from('v1:+').toString('base64url')],
    ['too long', 'A'.repeat(201)],
  ])('refuses %s with INVALID_CURSOR', (_label, cursor) => {
    expect(() => decodeJobCursor(cursor)).toThrow(InvalidCursor);
  });
});
