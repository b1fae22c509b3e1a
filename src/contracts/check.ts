import { isObject, JsonDocument } from './json-document.js';
import { compareSchemas, type SchemaFinding } from './schema-compat.js';

/** A payload of the producer's that the consumer may refuse, or that the check cannot prove it takes. */
export interface ContractFinding extends SchemaFinding {
  /** The services (each document's `info.title`). */
  producer: string;
  consumer: string;
  /** The event type (the channel address). */
  type: string;
}

/** The outcome of one producer against one consumer: the types both name, and what does not provably fit. */
export interface ContractCheck {
  producer: string;
  consumer: string;
  /** The types the producer sends and the consumer receives. */
  types: string[];
  findings: ContractFinding[];
}

/** One service's document: what it sends and receives, by type. */
interface Contract {
  title: string;
  document: JsonDocument;
  /** The payload schemas of each type it sends. */
  sends: Map<string, unknown[]>;
  /** Each type's receive operations, each with its payload schemas (a payload must fit one schema of every operation). */
  receives: Map<string, unknown[][]>;
}

/**
 * For each type the producer sends and the consumer receives: is every payload valid under the
 * producer's schema also valid under the consumer's? Findings name the type, the field and why.
 * Throws a TypeError for something that is not an AsyncAPI 3 document.
 */
export function checkContracts(producerDocument: unknown, consumerDocument: unknown): ContractCheck {
  const producer = readContract(producerDocument, 'producer');
  const consumer = readContract(consumerDocument, 'consumer');
  const types = [...producer.sends.keys()].filter((type) => consumer.receives.has(type)).sort();
  const findings: ContractFinding[] = [];
  const seen = new Set<string>();
  for (const type of types) {
    for (const sent of producer.sends.get(type)!) {
      for (const accepted of consumer.receives.get(type)!) {
        const schema = accepted.length === 1 ? accepted[0] : { anyOf: accepted };
        for (const finding of compareSchemas(sent, schema, { producer: producer.document, consumer: consumer.document })) {
          const key = `${type}\n${finding.pointer}\n${finding.reason}`;
          if (seen.has(key)) continue;
          seen.add(key);
          findings.push({ producer: producer.title, consumer: consumer.title, type, ...finding });
        }
      }
    }
  }
  return { producer: producer.title, consumer: consumer.title, types, findings };
}

/** One line: `users → payments: user-created /email: cannot prove: …`. */
export function formatFinding(finding: ContractFinding): string {
  const where = finding.pointer === '' ? '(the payload)' : finding.pointer;
  return `${finding.producer} → ${finding.consumer}: ${finding.type} ${where}: ${finding.cannotProve ? 'cannot prove: ' : ''}${finding.reason}`;
}

function readContract(value: unknown, role: string): Contract {
  if (!isObject(value) || typeof value.asyncapi !== 'string' || !value.asyncapi.startsWith('3.')) {
    throw new TypeError(`the ${role}'s document is not an AsyncAPI 3 document (its "asyncapi" field must be 3.x)`);
  }
  const document = new JsonDocument(value);
  const title = isObject(value.info) && typeof value.info.title === 'string' ? value.info.title : role;
  const contract: Contract = { title, document, sends: new Map(), receives: new Map() };
  for (const [id, raw] of Object.entries(isObject(value.operations) ? value.operations : {})) {
    const operation = document.follow(raw);
    if (!isObject(operation) || (operation.action !== 'send' && operation.action !== 'receive')) {
      throw new TypeError(`operation "${id}" of the ${role}'s document has no action "send" or "receive"`);
    }
    const channel = document.follow(operation.channel);
    if (!isObject(channel)) throw new TypeError(`operation "${id}" of the ${role}'s document has no channel`);
    if (typeof channel.address !== 'string') continue; // an address decided at run time: no event type to match
    const messages = Array.isArray(operation.messages) ? operation.messages : Object.values(isObject(channel.messages) ? channel.messages : {});
    const payloads = messages.map((reference) => {
      const message = document.follow(reference);
      if (!isObject(message)) throw new TypeError(`a message of operation "${id}" of the ${role}'s document does not resolve`);
      return payloadOf(message);
    });
    if (operation.action === 'send') contract.sends.set(channel.address, [...(contract.sends.get(channel.address) ?? []), ...payloads]);
    else if (payloads.length > 0) contract.receives.set(channel.address, [...(contract.receives.get(channel.address) ?? []), payloads]);
  }
  return contract;
}

/**
 * A message's payload schema: none is "any payload"; a multi-format schema in JSON Schema or
 * AsyncAPI's schema format is that schema; another format stays as it is, whose unknown keywords
 * (`schemaFormat`, `schema`) the check cannot prove anything about.
 */
function payloadOf(message: Record<string, unknown>): unknown {
  const { payload } = message;
  if (payload === undefined) return true;
  if (isObject(payload) && typeof payload.schemaFormat === 'string' && 'schema' in payload) {
    return /^application\/(vnd\.aai\.asyncapi|schema)\+(json|yaml)\b/.test(payload.schemaFormat) ? payload.schema : payload;
  }
  return payload;
}
