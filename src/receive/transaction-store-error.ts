/**
 * The inbox store itself failed inside `InboxStore.runInTransaction` (connect, begin, claim,
 * commit), as opposed to the handler it ran: the receiver answers 503 (retry later) for it.
 */
export class TransactionStoreError extends Error {
  override readonly name = 'TransactionStoreError';
  /** `started`: whether the handler had been called (its writes, if any, rolled back with the transaction). */
  constructor(
    readonly storeError: unknown,
    readonly started = true,
  ) {
    super((storeError as Error)?.message ?? String(storeError), { cause: storeError });
  }
}
