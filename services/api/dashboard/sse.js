// Server-sent events read from a fetch() body: EventSource cannot send the X-API-Key header the API needs when
// API_KEYS is set. Pure parser (unit-tested in services/api/src/dashboard-assets.test.ts) plus a small reader.

/** A push parser: feed it text chunks; it calls onEvent({event, data, id}) per event (comments are skipped). */
export function createSseParser(onEvent) {
  let buffer = '';
  let data = [];
  let event = '';
  let id;
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id });
      data = [];
      event = '';
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  };
  return {
    push(chunk) {
      buffer += chunk;
      const parts = buffer.split(/\r\n|\r|\n/);
      // A trailing '\r' may be the first half of '\r\n': keep it for the next chunk.
      buffer = parts.pop() ?? '';
      if (buffer === '' && chunk.endsWith('\r')) buffer = '\r';
      for (const p of parts) line(p);
    },
    /** The last event id seen (for Last-Event-ID). */
    get lastId() {
      return id;
    },
  };
}

/**
 * Reads the event stream at `url` with `headers` until it ends; resolves with the last event id, or null when the
 * answer is 204 (nothing after Last-Event-ID: the stream had ended). Rejects with an Error carrying `status` and the
 * JSON error body when the answer is another non-200.
 */
export async function readEventStream(url, headers, onEvent, signal) {
  const res = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' }, signal });
  if (res.status === 204) return null;
  if (!res.ok || !res.body) {
    const body = await res.json().catch(() => ({}));
    throw Object.assign(new Error(body.message || `HTTP ${res.status}`), { status: res.status, body });
  }
  const parser = createSseParser(onEvent);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
  return parser.lastId;
}
