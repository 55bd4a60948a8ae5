/**
 * Redis Cluster's hash slot of a key: CRC16 (XMODEM) of its hash tag (the first non-empty `{...}`) or of the whole
 * key, mod 16384. Keys that must meet in one script or MULTI have to share a slot (tests check the key builders).
 */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
