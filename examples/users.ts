import { randomUUID } from 'node:crypto';
import express from 'express';
import { createEventBus, type EventBusOptions } from '../src/index.js';
import { UserCreated, UserDeleted } from './schemas.js';

/** The users service: an Express API that emits user-created and user-deleted. */
export function createUsersService(options: EventBusOptions) {
  const bus = createEventBus({ service: 'users', ...options })
    .declareEvent('user-created', ['payments', 'orders'], { schema: UserCreated })
    .declareEvent('user-deleted', ['payments'], { schema: UserDeleted });

  const users = new Map<string, { id: string; email: string; name?: string }>();
  const app = express();
  app.use(express.json());

  app.post('/users', async (req, res) => {
    const user = { id: randomUUID(), email: String(req.body?.email), name: req.body?.name as string | undefined };
    users.set(user.id, user);
    await bus.emit('user-created', { user_id: user.id, email: user.email, ...(user.name ? { name: user.name } : {}) });
    res.status(201).json(user);
  });

  app.delete('/users/:id', async (req, res) => {
    if (!users.delete(req.params.id)) {
      res.status(404).json({ error: 'no such user' });
      return;
    }
    await bus.emit('user-deleted', { user_id: req.params.id });
    res.status(204).end();
  });

  return { app, bus };
}
