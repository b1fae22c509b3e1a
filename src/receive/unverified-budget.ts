/**
 * The bytes held at once by requests whose signature is not checked yet, shared by every request
 * one receiver reads. Each request claims its bytes as they arrive (never its declared length, so a
 * client that only sends headers holds nothing) and gives them back when it is authenticated,
 * refused or aborted. Requests still reading past their start deadline are slow: together they may
 * hold only half of the budget, so the rest always stays for requests whose body arrives promptly.
 */
export class UnverifiedBudget {
  private held = 0;
  private slowHeld = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes claimed now, by every request still unauthenticated. */
  get heldBytes(): number {
    return this.held;
  }

  /** A new, empty claim for one request. */
  claim(): BudgetClaim {
    let bytes = 0;
    let released = false;
    let slow = false;
    const fits = (extra: number) => this.held + extra <= this.maxBytes && (!slow || this.slowHeld + extra <= this.maxBytes / 2);
    return {
      growTo: (total) => {
        if (released || total <= bytes) return !released;
        if (!fits(total - bytes)) return false;
        this.held += total - bytes;
        if (slow) this.slowHeld += total - bytes;
        bytes = total;
        return true;
      },
      markSlow: () => {
        if (released || slow) return !released;
        if (this.slowHeld + bytes > this.maxBytes / 2) return false;
        slow = true;
        this.slowHeld += bytes;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.held -= bytes;
        if (slow) this.slowHeld -= bytes;
        bytes = 0;
      },
    };
  }
}

/** One request's share of the budget. */
export interface BudgetClaim {
  /** Raises the claim to `total` bytes. False, with nothing more taken, when the budget cannot hold them. */
  growTo(total: number): boolean;
  /** The request is slow (still reading past its start deadline). False when the slow share cannot hold its bytes. */
  markSlow(): boolean;
  /** Gives every byte of the claim back. Idempotent. */
  release(): void;
}
