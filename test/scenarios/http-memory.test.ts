// The scenario suite on HTTP push with the in-memory outbox and inbox.
import { httpBackend } from './backends/http.js';
import { runScenarios } from './suite.js';

runScenarios(httpBackend('memory'));
