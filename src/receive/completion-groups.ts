import type { InboxMark } from './inbox-store.js';

export interface CompletionGroupsOptions {
  /** Writes one group's marks (in one inbox transaction when the store can). */
  write(marks: readonly InboxMark[]): Promise<void>;
  /**
   * A group is written once it holds this many completions (a handler's mark with its event's `done`
   * mark counts once), or this long after its first, or when no handler runs.
   */
  maxCompletions: number;
  maxWaitMs: number;
}

/**
 * Handler completions on their way to the inbox, recorded as handlers end, in small groups (group
 * commit) rather than once per request: a process killed at any moment loses at most the open
 * group's completions, whatever the size of the batches in flight. A group is written at
 * `maxCompletions`, `maxWaitMs` after its first mark, or as soon as no handler runs (nothing would join it soon),
 * so a lone event waits for nothing.
 */
export class CompletionGroups {
  private open: Group | undefined;
  private running = 0;

  constructor(private readonly o: CompletionGroupsOptions) {}

  /** A handler starts: an open group may wait for it. */
  begin(): void {
    this.running += 1;
  }

  /** A handler that began has ended; its `marks` (none when it failed) join the open group. Resolves once they are written. */
  end(marks: readonly InboxMark[]): Promise<void> {
    this.running -= 1;
    const group = marks.length > 0 ? (this.open ??= this.openGroup()) : this.open;
    if (marks.length > 0) {
      group!.marks.push(...marks);
      group!.completions += 1;
    }
    if (group && (group.completions >= this.o.maxCompletions || this.running === 0)) this.flush(group);
    return marks.length > 0 ? group!.written : Promise.resolve();
  }

  private openGroup(): Group {
    let settle!: Pick<Group, 'resolve' | 'reject'>;
    const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const group: Group = { marks: [], completions: 0, written, ...settle, timer: setTimeout(() => this.flush(group), this.o.maxWaitMs) };
    return group;
  }

  private flush(group: Group): void {
    if (this.open !== group) return;
    this.open = undefined;
    clearTimeout(group.timer);
    this.o.write(group.marks).then(group.resolve, group.reject);
  }
}

interface Group {
  marks: InboxMark[];
  completions: number;
  written: Promise<void>;
  timer: NodeJS.Timeout;
  resolve(): void;
  reject(error: unknown): void;
}
