/** The seed scenario's event schemas. `as const` lets the library infer payload types from them. */
export const UserCreated = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    email: { type: 'string', format: 'email' },
    name: { type: 'string' },
  },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;

export const UserDeleted = {
  type: 'object',
  properties: { user_id: { type: 'string' } },
  required: ['user_id'],
  additionalProperties: false,
} as const;
