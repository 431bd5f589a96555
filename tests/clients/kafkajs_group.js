// kafkajs group member for the rebalance tests (tests/groups.rs).
//
// Usage: node kafkajs_group.js BOOTSTRAP TOPIC GROUP --name NAME --stop-file PATH [--session-timeout-ms MS]
//
// Subscribes to TOPIC in GROUP (fromBeginning, auto commit) and prints one
// JSON object per line on stdout:
//   {"ev":"assigned","gen":G,"member":ID,"parts":[...]}  after each join (kafkajs is eager: the whole assignment)
//   {"ev":"revoked","parts":[...]}  when a rebalance starts (it gives everything up)
//   {"ev":"records","r":[[partition, offset], ...]}  per batch, before the batch's offsets are resolved
//   {"ev":"closed"}  after disconnect() (LeaveGroup), once PATH exists
// Exits non-zero on any client error.
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');
// kafkajs does not report the generation; its ConsumerGroup object holds it.
// Same module instance as kafkajs's own (NODE_PATH resolves both alike).
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup');

let currentGroup = null;
const joinAndSync = ConsumerGroup.prototype.joinAndSync;
ConsumerGroup.prototype.joinAndSync = function (...args) {
  currentGroup = this;
  return joinAndSync.apply(this, args);
};

function parseArgs(argv) {
  const [bootstrap, topic, group, ...rest] = argv;
  if (!bootstrap || !topic || !group) {
    throw new Error('usage: kafkajs_group.js BOOTSTRAP TOPIC GROUP --name NAME --stop-file PATH [--session-timeout-ms MS]');
  }
  const opts = { bootstrap, topic, group, name: 'member', 'stop-file': '/nonexistent', 'session-timeout-ms': '10000' };
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i].replace(/^--/, '');
    if (!(name in opts)) throw new Error(`unknown option ${rest[i]}`);
    opts[name] = rest[i + 1];
  }
  return opts;
}

// stdout is a pipe (asynchronous in node): keep the order, and wait for it
// before exiting.
let out = Promise.resolve();
function emit(obj) {
  const line = JSON.stringify(obj) + '\n';
  out = out.then(() => new Promise((resolve) => process.stdout.write(line, resolve)));
  return out;
}

function stderrLogger() {
  return ({ namespace, label, log }) => {
    const { message, ...extra } = log;
    process.stderr.write(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}\n`);
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const session = Number(o['session-timeout-ms']);
  const kafka = new Kafka({
    clientId: `sluice-test-kafkajs-${o.name}`,
    brokers: [o.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    retry: { retries: 8, initialRetryTime: 200 },
  });
  const consumer = kafka.consumer({
    groupId: o.group,
    sessionTimeout: session,
    heartbeatInterval: Math.max(100, Math.floor(session / 8)),
    maxWaitTimeInMs: 200,
  });
  let owned = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    owned = (e.payload.memberAssignment[o.topic] || []).slice().sort((a, b) => a - b);
    const gen = currentGroup ? currentGroup.generationId : null;
    emit({ ev: 'assigned', gen, member: e.payload.memberId, parts: owned });
  });
  consumer.on(consumer.events.REBALANCING, () => {
    emit({ ev: 'revoked', parts: owned });
    owned = [];
  });
  let crashed = null;
  consumer.on(consumer.events.CRASH, (e) => {
    // kafkajs restarts the consumer itself after retriable errors.
    if (!e.payload.restart) crashed = e.payload.error;
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
  await emit({ ev: 'started', name: o.name });
  await consumer.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      const r = batch.messages.map((m) => [batch.partition, Number(m.offset)]);
      if (r.length > 0) await emit({ ev: 'records', r });
      for (const m of batch.messages) resolveOffset(m.offset);
      await heartbeat();
    },
  });
  while (!fs.existsSync(o['stop-file'])) {
    if (crashed) throw crashed;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await consumer.disconnect(); // commits resolved offsets, leaves the group
  await emit({ ev: 'closed' });
}

main().then(
  () => out.then(() => process.exit(0)),
  (e) => {
    process.stderr.write(`kafkajs_group.js failed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
