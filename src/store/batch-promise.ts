// The one promise that every event of a decision-log batch shares (both
// backends batch their events): settled from outside when the batch is
// written or fails.

export interface BatchPromise {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const noop = (): void => {};

/** A promise and its settle functions; a failed batch whose promise nobody kept is not an unhandled rejection. */
export function batchPromise(): BatchPromise {
  let resolve = noop;
  let reject: (e: unknown) => void = noop;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(noop);
  return { promise, resolve, reject };
}
