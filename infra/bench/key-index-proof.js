#!/usr/bin/env node
// Proves that preloadable-table.js --indexed-keys answers exactly what stock Azurite answers. Starts it with
// PLATFORM_BENCH_INDEX_CHECK=1 (every key lookup and narrowed query also runs Azurite's own code in the same process,
// on the same rows, and the server exits on the first difference), then through the REST API and the preload:
// preloads partitions with awkward keys (quotes, '~', '', unicode beyond the BMP, digit strings), changes rows after
// the preload (insert, replace, merge, upserts, deletes, a batch that fails and rolls back, a batch that succeeds, a
// dropped and re-created table), and runs range queries over every partition - bounds on, between and outside the
// keys, empty ranges, reversed operands, extra property conditions - page by page with $top 1, 3 and 1000, following
// the continuation headers, plus continuation headers pointing into other partitions. Each answer is also compared
// with this script's own model of the rows. Then the same again without the check, as the figures run it (LokiJS's
// own key indexes lazy, see key-index.js), against the model. Fails (exit 1) if the server stops, a page differs from
// the model, or the server reports fewer narrowed queries than sent. Deterministic (seeded), about two minutes; needs
// only Node.js.
//
//   node infra/bench/key-index-proof.js
//   PLATFORM_BENCH_INDEX_BLOCK=2 node infra/bench/key-index-proof.js    (tiny key blocks: splits on nearly every insert)
"use strict";

const { spawn } = require("child_process");
const crypto = require("crypto");
const net = require("net");
const path = require("path");

const ACCOUNT = "devstoreaccount1";
const KEY = Buffer.from("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", "base64");
const TABLE = "indexproof";

let seed = 20261128;
function random() {
  // mulberry32: the same rows and queries every run.
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];

function fail(message) {
  console.error(`key-index-proof: FAILED: ${message}`);
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
  }
  process.exit(1);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    }).on("error", reject);
  });
}

let port;
let controlPort;
let server;
let serverLog = "";

async function rest(method, resource, { body, headers = {}, query = "" } = {}) {
  const date = new Date().toUTCString();
  const signature = crypto.createHmac("sha256", KEY).update(`${date}\n/${ACCOUNT}/${ACCOUNT}/${resource}`).digest("base64");
  const response = await fetch(`http://127.0.0.1:${port}/${ACCOUNT}/${resource}${query}`, {
    method,
    body: typeof body === "string" ? body : body && JSON.stringify(body),
    headers: {
      "x-ms-date": date,
      "x-ms-version": "2019-02-02",
      authorization: `SharedKeyLite ${ACCOUNT}:${signature}`,
      accept: "application/json;odata=nometadata",
      "content-type": "application/json",
      ...headers,
    },
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

// The rows as this script believes they are stored: partition -> RowKey -> properties.
const model = new Map();
const rowsOf = (pk) => model.get(pk) ?? model.set(pk, new Map()).get(pk);

const awkward = ["", "'", "''", "a'b", "~", "~~", "a~", "z", "Z", "é", "e\u0301", "日本", "😀", "\uffff", "\ud7ff", " ", "0", "00",
  "1", "10", "2", "1e3", "-1", "a", "ab", "abc", "b", "%", "x y"];
const partitions = ["tenant-a", "tenant-a'q", "tenant~", "tenant-é", "", "users", "42", "7"];

function key(i) {
  return `${String(i).padStart(6, "0")}-${pick(["", "'", "~", "é", "😀", "z"])}`;
}

async function createTable() {
  const r = await rest("POST", "Tables", { body: { TableName: TABLE } });
  if (r.status !== 201) fail(`create table: ${r.status} ${r.text}`);
}

async function preload(rows) {
  const body = rows.map((row) => JSON.stringify(row)).join("\n");
  const r = await fetch(`http://127.0.0.1:${controlPort}/preload?table=${TABLE}`, { method: "POST", body });
  if (r.status !== 200) fail(`preload: ${r.status} ${await r.text()}`);
  for (const row of rows) {
    rowsOf(row.PartitionKey).set(row.RowKey, { n: row.n });
  }
}

function seedRows(count) {
  const rows = [];
  const seen = new Set();
  for (const pk of partitions) {
    for (const rk of awkward) {
      rows.push({ PartitionKey: pk, RowKey: rk, n: Math.floor(random() * 100) });
    }
  }
  for (let i = 0; i < count; i++) {
    const pk = pick(["users", "users", "users", "tenant-a"]);
    const rk = key(Math.floor(random() * count * 4));
    if (!seen.has(`${pk}\u0000${rk}`) && !awkward.includes(rk)) {
      seen.add(`${pk}\u0000${rk}`);
      rows.push({ PartitionKey: pk, RowKey: rk, n: Math.floor(random() * 100) });
    }
  }
  return rows;
}

const entityPath = (pk, rk) => `${TABLE}(PartitionKey='${encodeURIComponent(pk.replace(/'/g, "''"))}',RowKey='${encodeURIComponent(rk.replace(/'/g, "''"))}')`;

function existing(pk) {
  const keys = [...rowsOf(pk).keys()];
  return keys.length > 0 ? pick(keys) : undefined;
}

// One change through REST, mirrored in the model; the status must be what Table storage answers.
async function change() {
  const pk = pick(partitions);
  const kind = pick(["insert", "insert-dup", "replace", "merge", "upsert", "upsert-merge", "delete", "delete-missing", "get", "get-missing"]);
  const known = existing(pk);
  const fresh = pick([...awkward.map((a) => `${a}+`), key(Math.floor(random() * 100000))]);
  const n = Math.floor(random() * 100);
  const expect = (r, status, what) => {
    if (r.status !== status) fail(`${what} in ${JSON.stringify(pk)} (known ${JSON.stringify(known)}, fresh ${JSON.stringify(fresh)}): ${r.status} (expected ${status}) ${r.text}`);
  };
  let r;
  switch (kind) {
    case "insert":
      if (rowsOf(pk).has(fresh)) return;
      r = await rest("POST", TABLE, { body: { PartitionKey: pk, RowKey: fresh, n } });
      expect(r, 201, kind);
      rowsOf(pk).set(fresh, { n });
      return;
    case "insert-dup":
      if (known === undefined) return;
      r = await rest("POST", TABLE, { body: { PartitionKey: pk, RowKey: known, n } });
      expect(r, 409, kind);
      return;
    case "replace":
    case "merge":
      if (known === undefined) return;
      r = await rest(kind === "replace" ? "PUT" : "MERGE", entityPath(pk, known), { body: { PartitionKey: pk, RowKey: known, n, m: kind }, headers: { "if-match": "*" } });
      expect(r, 204, kind);
      rowsOf(pk).set(known, { n });
      return;
    case "upsert":
    case "upsert-merge": {
      const rk = random() < 0.5 && known !== undefined ? known : fresh;
      r = await rest(kind === "upsert" ? "PUT" : "MERGE", entityPath(pk, rk), { body: { PartitionKey: pk, RowKey: rk, n } });
      expect(r, 204, kind);
      rowsOf(pk).set(rk, { n });
      return;
    }
    case "delete":
      if (known === undefined) return;
      r = await rest("DELETE", entityPath(pk, known), { headers: { "if-match": "*" } });
      expect(r, 204, kind);
      rowsOf(pk).delete(known);
      return;
    case "delete-missing":
      if (rowsOf(pk).has(fresh)) return;
      r = await rest("DELETE", entityPath(pk, fresh), { headers: { "if-match": "*" } });
      expect(r, 404, kind);
      return;
    case "get":
      if (known === undefined) return;
      r = await rest("GET", entityPath(pk, known));
      expect(r, 200, kind);
      if (JSON.parse(r.text).n !== rowsOf(pk).get(known).n) fail(`get ${pk}/${known}: ${r.text}`);
      return;
    case "get-missing":
      if (rowsOf(pk).has(fresh)) return;
      r = await rest("GET", entityPath(pk, fresh));
      expect(r, 404, kind);
      return;
  }
}

// An entity group transaction of the given operations; returns the batch response's text.
async function batch(operations) {
  const changeset = `changeset_${crypto.randomUUID()}`;
  const boundary = `batch_${crypto.randomUUID()}`;
  const parts = operations.map(({ method, pk, rk, body }) => [
    `--${changeset}`,
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    `${method} http://127.0.0.1:${port}/${ACCOUNT}/${method === "POST" ? TABLE : entityPath(pk, rk)} HTTP/1.1`,
    "Content-Type: application/json",
    "Accept: application/json;odata=nometadata",
    ...(method === "POST" ? [] : ["If-Match: *"]),
    "",
    body ? JSON.stringify(body) : "",
  ].join("\r\n"));
  const text = [`--${boundary}`, `Content-Type: multipart/mixed; boundary=${changeset}`, "", ...parts, `--${changeset}--`, `--${boundary}--`, ""].join("\r\n");
  const r = await rest("POST", "$batch", { body: text, headers: { "content-type": `multipart/mixed; boundary=${boundary}` } });
  if (r.status !== 202) fail(`batch: ${r.status} ${r.text}`);
  return r.text;
}

async function batches() {
  const pk = "users";
  // Fails on its last operation (the key exists): the four before it have run and must be rolled back.
  const known = [...rowsOf(pk).keys()].slice(0, 4);
  const failing = [
    { method: "POST", pk, rk: "batch-new-1", body: { PartitionKey: pk, RowKey: "batch-new-1", n: 1 } },
    { method: "PUT", pk, rk: known[0], body: { PartitionKey: pk, RowKey: known[0], n: 2 } },
    { method: "MERGE", pk, rk: known[1], body: { PartitionKey: pk, RowKey: known[1], n: 3 } },
    { method: "DELETE", pk, rk: known[2] },
    { method: "POST", pk, rk: known[3], body: { PartitionKey: pk, RowKey: known[3], n: 4 } },
  ];
  const text = await batch(failing);
  if (!/HTTP\/1.1 409 .*\r?\n(.*\r?\n)*.*EntityAlreadyExists/.test(text)) fail(`the failing batch did not fail on its insert: ${text.slice(0, 1400)}`);
  for (const [rk, status] of [["batch-new-1", 404], [known[2], 200]]) {
    const r = await rest("GET", entityPath(pk, rk));
    if (r.status !== status || (status === 200 && JSON.parse(r.text).n !== rowsOf(pk).get(rk).n)) fail(`after the rolled-back batch ${pk}/${rk} answers ${r.status} ${r.text}`);
  }
  // Succeeds: its changes stay.
  const ok = [
    { method: "POST", pk, rk: "batch-new-2", body: { PartitionKey: pk, RowKey: "batch-new-2", n: 5 } },
    { method: "PUT", pk, rk: known[0], body: { PartitionKey: pk, RowKey: known[0], n: 6 } },
    { method: "DELETE", pk, rk: known[2] },
  ];
  const okText = await batch(ok);
  if (/HTTP\/1.1 [45]\d\d /.test(okText)) fail(`the good batch failed: ${okText.slice(0, 400)}`);
  rowsOf(pk).set("batch-new-2", { n: 5 });
  rowsOf(pk).set(known[0], { n: 6 });
  rowsOf(pk).delete(known[2]);
}

const quote = (text) => `'${text.replace(/'/g, "''")}'`;

// Every page of the query, following the continuation headers; returns [PartitionKey, RowKey, n] rows.
async function queryAll(filter, top, start) {
  const rows = [];
  let next = start;
  let pages = 0;
  for (;;) {
    let query = `?$filter=${encodeURIComponent(filter)}`;
    if (top !== undefined) query += `&$top=${top}`;
    if (next) query += `&NextPartitionKey=${encodeURIComponent(next[0])}&NextRowKey=${encodeURIComponent(next[1])}`;
    const r = await rest("GET", `${TABLE}()`, { query });
    if (r.status !== 200) fail(`query ${filter}: ${r.status} ${r.text}`);
    pages++;
    sent++;
    for (const e of JSON.parse(r.text).value) {
      rows.push([e.PartitionKey, e.RowKey, e.n]);
    }
    const np = r.headers.get("x-ms-continuation-nextpartitionkey");
    const nr = r.headers.get("x-ms-continuation-nextrowkey");
    if (np === null || nr === null || pages > 10000) break;
    next = [np, nr];
  }
  return rows;
}
let sent = 0;

// The rows a filter of this shape matches, in Azurite's order, by this script's model.
function expected(pk, bounds, minN) {
  const keys = [...rowsOf(pk).keys()].filter((rk) => bounds.every(([op, v]) =>
    op === "ge" ? rk >= v : op === "gt" ? rk > v : op === "le" ? rk <= v : op === "lt" ? rk < v : rk === v));
  keys.sort();
  return keys.filter((rk) => minN === undefined || rowsOf(pk).get(rk).n > minN).map((rk) => [pk, rk, rowsOf(pk).get(rk).n]);
}

async function queries(rounds) {
  for (let i = 0; i < rounds; i++) {
    const pk = pick(partitions);
    const keys = [...rowsOf(pk).keys()];
    const bound = () => pick([pick(awkward), keys.length ? pick(keys) : "m", `${pick(keys.length ? keys : ["m"])}\u0000`, "", "\uffff\uffff"]);
    const bounds = [];
    for (let b = Math.floor(random() * 3); b > 0; b--) {
      bounds.push([pick(["ge", "gt", "le", "lt", "eq"]), bound()]);
    }
    const minN = random() < 0.3 ? Math.floor(random() * 100) : undefined;
    const terms = [random() < 0.2 ? `${quote(pk)} eq PartitionKey` : `PartitionKey eq ${quote(pk)}`];
    for (const [op, v] of bounds) {
      const mirror = { ge: "le", gt: "lt", le: "ge", lt: "gt", eq: "eq" };
      terms.push(random() < 0.2 ? `${quote(v)} ${mirror[op]} RowKey` : `RowKey ${op} ${quote(v)}`);
    }
    if (minN !== undefined) terms.push(`n gt ${minN}`);
    terms.sort(() => random() - 0.5);
    const filter = random() < 0.5 ? terms.join(" and ") : terms.map((t) => `(${t})`).join(" and ");
    const top = pick([1, 3, 1000, undefined]);
    const got = await queryAll(filter, top);
    const want = expected(pk, bounds, minN);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      fail(`${filter} $top=${top}: got ${got.length} rows ${JSON.stringify(got.slice(0, 5))}..., expected ${want.length} ${JSON.stringify(want.slice(0, 5))}...`);
    }
  }
  // Continuation headers from elsewhere: another partition, a key before, inside and after the partition, none.
  const b64 = (text) => Buffer.from(text, "utf8").toString("base64");
  for (const pk of partitions) {
    for (const start of [[b64(""), b64("")], [b64(pk), b64("m")], [b64(pk), b64("")], [b64(`${pk}\u0000`), b64("")], [b64("zzz"), b64("a")], [b64(pk), b64("\uffff")]]) {
      await queryAll(`PartitionKey eq ${quote(pk)}`, pick([2, 1000]), start);
    }
  }
  // Shapes it must leave to Azurite's own code.
  for (const filter of ["PartitionKey eq 'users' or PartitionKey eq '7'", "not (PartitionKey ne 'users')", "RowKey ge 'a'", "n gt 50", "partitionkey eq 'users'"]) {
    const before = sent;
    await queryAll(filter, 1000);
    stockSent += sent - before;
  }
}
let stockSent = 0;

async function stats() {
  const r = await fetch(`http://127.0.0.1:${controlPort}/index-stats`);
  return r.json();
}

// One pass: with the check (every served answer compared with Azurite's in the server, LokiJS's key indexes adaptive
// as stock) or without it (as the figures run: LokiJS's key indexes lazy), every page compared with the model.
async function pass(check) {
  seed = 20261128;
  sent = 0;
  stockSent = 0;
  serverLog = "";
  stopping = false;
  model.clear();
  [port, controlPort] = [await freePort(), await freePort()];
  server = spawn(process.execPath, [path.join(__dirname, "preloadable-table.js"), "--port", String(port), "--controlPort", String(controlPort), "--indexed-keys"],
    { env: { ...process.env, PLATFORM_BENCH_INDEX_CHECK: check ? "1" : "0" }, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => { serverLog += d; });
  server.stderr.on("data", (d) => { serverLog += d; });
  server.on("exit", (code) => {
    if (!stopping) {
      console.error(serverLog);
      fail(`the table service exited (${code}) before the proof ended`);
    }
  });
  for (let i = 0; ; i++) {
    try {
      await stats();
      await rest("GET", "Tables");
      break;
    } catch (e) {
      if (i > 100) fail(`the table service did not start: ${e.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  await createTable();
  await preload(seedRows(3000));
  await queries(150);
  for (let i = 0; i < 600; i++) {
    await change();
  }
  await queries(150);
  await batches();
  await queries(100);
  // A second preload after REST changes, then more changes.
  await preload(partitions.map((pk) => ({ PartitionKey: pk, RowKey: `late-${pk}`, n: 7 })));
  for (let i = 0; i < 300; i++) {
    await change();
  }
  await queries(100);
  // Dropped and re-created: nothing of the old rows may answer.
  const dropped = await rest("DELETE", `Tables('${TABLE}')`);
  if (dropped.status !== 204) fail(`drop table: ${dropped.status} ${dropped.text}`);
  model.clear();
  await createTable();
  await preload(seedRows(500));
  for (let i = 0; i < 200; i++) {
    await change();
  }
  await queries(100);

  const s = await stats();
  if (!s.indexed || s.checking !== check || s.fellBack !== 0 || s.narrowedQueries < sent - stockSent || s.keyLookups === 0
    || s.checked !== (check ? s.narrowedQueries + s.keyLookups : 0)) {
    fail(`the server served fewer requests by the index than sent, or did not check them: ${JSON.stringify(s)} (${sent} queries sent, ${stockSent} not narrowable)`);
  }
  stopping = true;
  server.kill("SIGTERM");
  await new Promise((resolve) => server.on("exit", resolve));
  console.log(check
    ? `key-index-proof: with the check: ${sent} query pages (${sent - stockSent}+ narrowed) and the REST changes between them: every narrowed page and key lookup identical to Azurite's own answer, every page as the model expects`
    : `key-index-proof: as the figures run (no check, LokiJS's key indexes lazy): ${sent} query pages, every page as the model expects`);
  console.log(`key-index-proof: server: ${JSON.stringify(s)}`);
  process.stdout.write(serverLog.split("\n").filter((l) => l.includes("key index")).join("\n") + "\n");
}

async function main() {
  await pass(true);
  await pass(false);
}
let stopping = false;

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => fail(`stopped by ${signal}`));
}
main().catch(async (e) => {
  if (server && !stopping) {
    // A request that failed because the server stopped on a difference: its reason is in the server's output.
    await new Promise((resolve) => setTimeout(resolve, 500));
    stopping = true;
    if (server.exitCode !== null) {
      console.error(serverLog);
      fail(`the table service exited (${server.exitCode}): ${e.message}`);
    }
    server.kill("SIGTERM");
  }
  fail(e.stack ?? e);
});
