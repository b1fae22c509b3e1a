/**
 * The bytes held at once by requests whose signature is not checked yet, shared by every request
 * one receiver reads. Each request claims its share as its bytes arrive (or at once, by its
 * declared length) and gives it back when it is authenticated, refused or aborted.
 */
export class UnverifiedBudget {
  private held = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes claimed now, by every request still unauthenticated. */
  get heldBytes(): number {
    return this.held;
  }

  /** A new, empty claim for one request. */
  claim(): BudgetClaim {
    let bytes = 0;
    let released = false;
    return {
      growTo: (total) => {
        if (released || total <= bytes) return !released;
        if (this.held + (total - bytes) > this.maxBytes) return false;
        this.held += total - bytes;
        bytes = total;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.held -= bytes;
        bytes = 0;
      },
    };
  }
}

/** One request's share of the budget. */
export interface BudgetClaim {
  /** Raises the claim to `total` bytes. False, with nothing more taken, when the budget cannot hold them. */
  growTo(total: number): boolean;
  /** Gives every byte of the claim back. Idempotent. */
  release(): void;
}
