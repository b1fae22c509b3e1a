import { CompletionGroups } from '../../src/receive/completion-groups.js';
import type { InboxMark } from '../../src/receive/inbox-store.js';

test('a group closes at maxCompletions handler completions; an event’s done mark rides with its handler’s, uncounted', async () => {
  const written: InboxMark[][] = [];
  const groups = new CompletionGroups({ write: async (marks) => void written.push([...marks]), maxCompletions: 16, maxWaitMs: 60_000 });
  for (let i = 0; i < 20; i += 1) groups.begin();
  const ends = Array.from({ length: 20 }, (_, i) => groups.end([{ eventKey: `e${i}`, handlerKey: 'h' }, { eventKey: `e${i}` }]));
  await Promise.all(ends);
  // 16 completions (32 marks), then the last 4 when no handler runs: at most 16 handlers run again after a kill.
  expect(written.map((marks) => marks.length)).toEqual([32, 8]);
  expect(written[0]!.filter((mark) => mark.handlerKey !== undefined)).toHaveLength(16);
});
