// The scenario suite on RabbitMQ (the real broker, a vhost of this file's own).
import { describeWithBroker, takeBrokerTurns } from '../helpers/broker.js';
import { amqpBackend } from './backends/amqp.js';
import { runScenarios } from './suite.js';

describeWithBroker('RabbitMQ', () => {
  takeBrokerTurns();
  runScenarios(amqpBackend());
});
