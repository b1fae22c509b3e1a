// The scenario suite on HTTP push with the PostgreSQL outbox and inbox (a schema per test).
import { describePostgres } from '../helpers/postgres.js';
import { httpBackend } from './backends/http.js';
import { runScenarios } from './suite.js';

describePostgres('PostgreSQL', () => runScenarios(httpBackend('postgres')));
