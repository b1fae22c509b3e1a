/**
 * The inbox store itself failed inside `InboxStore.runInTransaction` (connect, begin, claim,
 * commit), as opposed to the handler it ran: the receiver answers 503 (retry later) for it.
 */
export class TransactionStoreError extends Error {
  override readonly name = 'TransactionStoreError';
  constructor(readonly storeError: unknown) {
    super((storeError as Error)?.message ?? String(storeError), { cause: storeError });
  }
}
