/**
 * A slow read (a table scan, a CloudWatch query) shared by every request for a while: the
 * console's panels are polled by every open page, and the answer need not be fresher than a
 * few seconds. A failed read is forgotten, so the next request tries again.
 */
export interface CachedRead<T> {
  /** The value, read anew when older than `maxAgeMs` (default: the read's own age). */
  (maxAgeMs?: number): Promise<T>;
  /** Forgets the value: the next call reads. */
  invalidate(): void;
}

export function cachedRead<T>(ms: number, read: () => Promise<T>): CachedRead<T> {
  let value: { at: number; promise: Promise<T> } | undefined;
  const get = (maxAgeMs = ms) => {
    if (value === undefined || Date.now() - value.at > maxAgeMs) {
      const promise = read();
      value = { at: Date.now(), promise };
      promise.catch(() => {
        if (value?.promise === promise) value = undefined;
      });
    }
    return value.promise;
  };
  return Object.assign(get, { invalidate: () => (value = undefined) });
}
