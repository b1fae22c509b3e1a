import type { RouteHandler, RouteResponse } from '../adapters/routes.js';
import { operatorOf, type OperatorTokens } from '../operate/operator-token.js';
import type { AsyncApiDocument } from './asyncapi.js';

/**
 * `GET <path>/asyncapi.json`: the service's AsyncAPI document, to operators only
 * (`Authorization: Bearer <operator token>`); 404 while no operator token is configured.
 */
export function asyncApiRoute(operators: OperatorTokens, document: () => AsyncApiDocument): RouteHandler {
  return async (request): Promise<RouteResponse> => {
    if (Object.keys(operators).length === 0) {
      return { status: 404, headers: {}, body: { error: 'not_found', message: 'the AsyncAPI document is served to operators only: it needs an operator token (console.token or EVENTS_CONSOLE_TOKEN)' } };
    }
    const { authorization } = request.headers;
    if (operatorOf(operators, typeof authorization === 'string' ? authorization : undefined) === undefined) {
      return {
        status: 401,
        headers: { 'www-authenticate': 'Bearer' },
        body: { error: 'unauthorized', message: `${authorization === undefined ? 'send' : 'wrong operator token: send'} the operator token as Authorization: Bearer <token>` },
      };
    }
    return { status: 200, headers: { 'cache-control': 'no-store' }, body: document() };
  };
}
