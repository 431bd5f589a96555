// kafkajs client for the Sluice integration tests.
//
// Usage: node kafkajs.js BOOTSTRAP TOPIC GROUP [--count N] [--partitions P] [--timeout S]
//
// Creates TOPIC (admin), lists and describes it, produces N records (acks=all,
// keys, headers, explicit partitions so each record's offset is known), then
// consumes them in consumer group GROUP (subscribe + run, stops after N
// records), and reads the group's committed offsets back with the admin.
// Prints one JSON object on stdout; exits non-zero on any client error.
'use strict';

const { Kafka, logLevel, Partitioners } = require('kafkajs');

function parseArgs(argv) {
  const [bootstrap, topic, group, ...rest] = argv;
  if (!bootstrap || !topic || !group) {
    throw new Error('usage: kafkajs.js BOOTSTRAP TOPIC GROUP [--count N] [--partitions P] [--timeout S]');
  }
  const opts = { bootstrap, topic, group, count: 1000, partitions: 3, timeout: 60 };
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i].replace(/^--/, '');
    if (!(name in opts)) throw new Error(`unknown option ${rest[i]}`);
    opts[name] = Number(rest[i + 1]);
  }
  return opts;
}

const TS_BASE = 1700000000000;

// Deterministic records: null keys now and then, empty values, binary bytes, headers.
function makeRecord(i) {
  const key = i % 50 === 7 ? null : Buffer.from(`key-${i % 97}`);
  let value;
  if (i % 101 === 3) {
    value = Buffer.alloc(0);
  } else {
    const text = Buffer.from(`kafkajs record ${i}; `.repeat(1 + (i % 7)));
    const bin = Buffer.alloc(i % 40);
    for (let j = 0; j < bin.length; j++) bin[j] = (i * 31 + j * 7) & 0xff;
    value = Buffer.concat([text, bin]);
  }
  const headers = i % 17 === 0 ? {} : { idx: Buffer.from(String(i)), bin: Buffer.from([i & 0xff, (i >> 8) & 0xff]) };
  return { key, value, headers, timestamp: String(TS_BASE + i) };
}

const hex = (b) => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'));
const hdrs = (h) => Object.entries(h || {}).map(([k, v]) => [k, hex(v)]);

function stderrLogger() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log;
    process.stderr.write(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}\n`);
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const kafka = new Kafka({
    clientId: 'sluice-test-kafkajs',
    brokers: [o.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    retry: { retries: 5, initialRetryTime: 200 },
  });

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic: o.topic, numPartitions: o.partitions, replicationFactor: 1 }],
    waitForLeaders: true,
    timeout: 30000,
  });
  const listed = (await admin.listTopics()).filter((t) => t === o.topic);
  const meta = await admin.fetchTopicMetadata({ topics: [o.topic] });
  const described = meta.topics.map((t) => ({ name: t.name, partitions: t.partitions.length }));

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const delivered = [];
  const chunk = 250;
  for (let start = 0; start < o.count; start += chunk) {
    const batch = [];
    for (let i = start; i < Math.min(o.count, start + chunk); i++) {
      batch.push({ i, p: i % o.partitions, ...makeRecord(i) });
    }
    const res = await producer.send({
      topic: o.topic,
      acks: -1,
      messages: batch.map((m) => ({ key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp, partition: m.p })),
    });
    // One result per partition: the base offset of what this send put there,
    // in the order the messages were given.
    const base = {};
    for (const r of res) {
      if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`);
      base[r.partition] = BigInt(r.baseOffset);
    }
    const k = {};
    for (const m of batch) {
      const n = k[m.p] || 0n;
      k[m.p] = n + 1n;
      delivered.push([m.p, Number(base[m.p] + n), hex(m.key), hex(m.value), hdrs(m.headers), Number(m.timestamp)]);
    }
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: o.group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
  const records = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out with ${records.length} of ${o.count} records`)),
      o.timeout * 1000,
    );
    consumer.on(consumer.events.CRASH, (e) => {
      clearTimeout(timer);
      reject(e.payload.error);
    });
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          records.push([
            partition,
            Number(message.offset),
            hex(message.key),
            hex(message.value),
            hdrs(message.headers),
            Number(message.timestamp),
          ]);
          if (records.length >= o.count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch((e) => {
        clearTimeout(timer);
        reject(e);
      });
  });
  await consumer.stop(); // commits the offsets of what was processed
  await consumer.disconnect(); // leaves the group
  const offsets = await admin.fetchOffsets({ groupId: o.group, topics: [o.topic] });
  const committed = {};
  for (const t of offsets) for (const p of t.partitions) committed[p.partition] = Number(p.offset);
  const endOffsets = {};
  for (const p of await admin.fetchTopicOffsets(o.topic)) endOffsets[p.partition] = Number(p.high);
  await admin.disconnect();

  const out = JSON.stringify({ created, listed, described, delivered, records, committed, end_offsets: endOffsets });
  // stdout is a pipe (asynchronous in node): exit only once it is written.
  await new Promise((resolve) => process.stdout.write(out + '\n', resolve));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`kafkajs.js failed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
