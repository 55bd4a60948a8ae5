import { isUtf8 as nodeIsUtf8 } from 'node:buffer';

/**
 * Cheap checks on untrusted message bodies before they are parsed or rendered. JSON.parse copes with any
 * nesting, but JSON.stringify (a log line, an HTTP answer) and every recursive walk overflow the stack on a
 * body nested a few thousand levels deep, so depth is measured first, by a linear scan without recursion.
 */

/** Every message of the suite nests a few levels; anything deeper than this is refused or shown as text. */
export const MAX_MESSAGE_DEPTH = 32;
/** Every message of the suite is a few hundred bytes; anything larger than this is refused. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * The deepest nesting of arrays and objects in JSON text (brackets inside strings are skipped). Stops counting
 * once `stopAbove` is exceeded. Not a validator: malformed text just yields some number.
 */
export function jsonDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return max;
}

/** Whether the bytes are well-formed UTF-8 (Buffer#toString would silently replace bad sequences). */
export function isUtf8(bytes: Buffer): boolean {
  return nodeIsUtf8(bytes);
}
