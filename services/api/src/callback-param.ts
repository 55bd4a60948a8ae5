import { isIP } from 'node:net';
import { CALLBACK_EVENTS, type CallbackEvent, type CallbackSpec, type TargetPolicy } from '@lookup/contracts';
import { CallbackNotAllowed, CallbacksDisabled, InvalidCallback, truncate } from './http-errors.ts';

/**
 * A submission's `callback` (its shape already checked by the body schema), normalised: an http(s) URL without
 * credentials or fragment whose host, when it is an IP literal, the target policy allows (a host name is checked
 * after every resolution, when the dispatcher connects), and its events (omitted: every job end). Throws
 * CallbacksDisabled when no CALLBACK_SECRET is configured.
 */
export function parseCallback(raw: { url: string; events?: readonly string[] }, policy: Pick<TargetPolicy, 'checkAddress'>, enabled: boolean): CallbackSpec {
  if (!enabled) throw new CallbacksDisabled();
  let url: URL;
  try {
    url = new URL(raw.url.trim());
  } catch {
    throw new InvalidCallback(`callback.url '${truncate(raw.url, 100)}' is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidCallback(`callback.url must be http or https, not ${truncate(url.protocol, 20)}`);
  if (url.username || url.password) throw new InvalidCallback('callback.url must not carry credentials (user:password@); authenticate the delivery by its signature');
  if (url.hash) throw new InvalidCallback('callback.url must not have a fragment (#...)');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) {
    const verdict = policy.checkAddress(host);
    if (!verdict.allowed) throw new CallbackNotAllowed(verdict.message);
  }
  const events = (raw.events ?? CALLBACK_EVENTS) as readonly CallbackEvent[];
  return { url: url.toString(), events: CALLBACK_EVENTS.filter((e) => events.includes(e)) };
}
