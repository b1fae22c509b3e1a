// The scenario suite on Kafka (librdkafka's mock cluster, one for this file).
import { describeWithKafka } from '../helpers/kafka.js';
import { kafkaBackend } from './backends/kafka.js';
import { runScenarios } from './suite.js';

jest.setTimeout(60_000);
describeWithKafka('Kafka', () => runScenarios(kafkaBackend()));
