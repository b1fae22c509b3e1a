import { UnrecordedCompletions } from '../../src/receive/unrecorded-completions.js';
import { UnverifiedBudget } from '../../src/receive/unverified-budget.js';

describe('UnverifiedBudget', () => {
  test('claims grow up to the shared maximum, refuse beyond it without taking anything, and release once', () => {
    const budget = new UnverifiedBudget(100);
    const a = budget.claim();
    const b = budget.claim();
    expect(a.growTo(60)).toBe(true);
    expect(b.growTo(50)).toBe(false); // 110 > 100: nothing taken
    expect(budget.heldBytes).toBe(60);
    expect(b.growTo(40)).toBe(true);
    expect(budget.heldBytes).toBe(100);
    a.release();
    a.release(); // idempotent
    expect(budget.heldBytes).toBe(40);
    expect(a.growTo(10)).toBe(false); // a released claim takes nothing more
    b.release();
    expect(budget.heldBytes).toBe(0);
  });
});

describe('UnverifiedBudget: slow claims', () => {
  test('slow claims together hold at most half of the budget; the other half stays for prompt ones', () => {
    const budget = new UnverifiedBudget(100);
    const [a, b, prompt] = [budget.claim(), budget.claim(), budget.claim()];
    expect(a.growTo(30)).toBe(true);
    expect(b.growTo(30)).toBe(true);
    expect(a.markSlow()).toBe(true);
    expect(b.markSlow()).toBe(false); // 60 > 50: b is refused, it keeps its bytes until released
    expect(a.growTo(50)).toBe(true);
    expect(a.growTo(51)).toBe(false); // over the slow share
    b.release();
    expect(prompt.growTo(50)).toBe(true); // the prompt half is still free
    a.release();
    prompt.release();
    expect(budget.heldBytes).toBe(0);
    expect(budget.claim().markSlow()).toBe(true); // an empty slow claim takes nothing
  });
});

describe('UnrecordedCompletions', () => {
  test('remembers handlers per event, forgets a recorded one, and is bounded (oldest event forgotten first)', () => {
    const memory = new UnrecordedCompletions(2);
    memory.add('e1', 'h1');
    memory.add('e1', 'h2');
    memory.add('e2', 'h1');
    expect(memory.has('e1', 'h2')).toBe(true);
    memory.delete('e1', 'h2');
    expect(memory.has('e1', 'h2')).toBe(false);
    expect(memory.has('e1', 'h1')).toBe(true);
    memory.add('e3', 'h1'); // evicts e1
    expect(memory.size).toBe(2);
    expect(memory.has('e1', 'h1')).toBe(false);
    expect(memory.has('e3', 'h1')).toBe(true);
  });
});
