export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}
export function createSseParser(onEvent: (event: SseEvent) => void): { push(chunk: string): void; readonly lastId: string | undefined };
export function readEventStream(
  url: string,
  headers: Record<string, string>,
  onEvent: (event: SseEvent) => void,
  signal?: AbortSignal,
): Promise<string | undefined | null>;
