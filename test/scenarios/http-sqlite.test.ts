// The scenario suite on HTTP push (an Express receiver) with the SQLite outbox and inbox.
import { httpBackend } from './backends/http.js';
import { runScenarios } from './suite.js';

runScenarios(httpBackend('sqlite'));
