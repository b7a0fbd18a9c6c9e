#!/usr/bin/env node
// The pinned Azurite's own table service (in memory, its request handling unchanged), run in this process so that a
// figure can preload a large seed straight into its store, then measure through the normal REST endpoints.
//
// Why: through the REST API every insert first looks its key up with a LokiJS query that uses only the PartitionKey
// index and then walks the whole partition for the RowKey. Inserts into one partition therefore slow down with its
// size: the 2.3 million rows of the inventory figure (100,000 items, 1,000,000 movements of two rows each) would take
// many hours. Preloading takes about a minute. Nothing else differs: reads, queries and later writes are Azurite's
// (with --indexed-keys, Azurite's answers found through an index, below).
//
//   node infra/bench/preloadable-table.js --port PORT --controlPort CONTROL_PORT [--indexed-keys]
//
// --indexed-keys serves key lookups and single-partition key-range queries from an index of each table's keys (see
// key-index.js) instead of Azurite's partition walk and whole-table scan and sort; what they answer is unchanged. With
// PLATFORM_BENCH_INDEX_CHECK=1 every such lookup and query also runs Azurite's own code and the process exits with
// status 3 on the first difference. GET /index-stats on the control port says how many were served and checked.
//
// POST http://127.0.0.1:CONTROL_PORT/preload?table=NAME with NDJSON, one entity a line exactly as the Azure.Data.Tables
// SDK sends it on insert (PartitionKey, RowKey and the properties with their "@odata.type" annotations). A request
// adds all of its rows or none: an unreadable line, an invalid property type, a key already stored or given twice, a
// missing table, or a body over MAX_BODY_BYTES is a 400 with the reason, and the store is left as it was. Success is
// 200 {"inserted": n}. Rows of one request share one Timestamp and ETag, as those of one batch would.
"use strict";

const http = require("http");
const path = require("path");

const azurite = path.join(__dirname, "..", "node_modules", "azurite", "dist", "src");
const TableServer = require(path.join(azurite, "table", "TableServer")).default;
const TableConfiguration = require(path.join(azurite, "table", "TableConfiguration")).default;
const { NormalizedEntity } = require(path.join(azurite, "table", "entity", "NormalizedEntity"));
const { newTableEntityEtag } = require(path.join(azurite, "table", "utils", "utils"));
const { truncatedISO8061Date } = require(path.join(azurite, "common", "utils", "utils"));
const { configLogger } = require(path.join(azurite, "common", "Logger"));
const keyIndex = require("./key-index");

const ACCOUNT = "devstoreaccount1";
const MAX_BODY_BYTES = 256 * 1024 * 1024;

function option(name) {
  const at = process.argv.indexOf(name);
  const value = at > 0 ? Number(process.argv[at + 1]) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    console.error(`preloadable-table.js: ${name} must be a port number`);
    process.exit(2);
  }
  return value;
}

class BadPreload extends Error {}

// Keys already in each collection, so a preload can refuse duplicates without Azurite's per-key partition walk.
// Rebuilt whenever the collection's insert counter moved since (a row added through the REST API meanwhile).
const known = new Map();

function keysOf(collection) {
  const cached = known.get(collection.name);
  if (cached && cached.maxId === collection.maxId) {
    return cached.keys;
  }
  const keys = new Set();
  for (const doc of collection.data) {
    keys.add(`${doc.PartitionKey}\u0000${doc.RowKey}`);
  }
  known.set(collection.name, { maxId: collection.maxId, keys });
  return keys;
}

function preload(store, indexed, table, body) {
  const collection = store.db.getCollection(`${ACCOUNT}$${table.toLowerCase()}`) ?? store.db.getCollection(`${ACCOUNT}$${table}`);
  if (!collection) {
    throw new BadPreload(`no table ${table}: create it first`);
  }

  // With --indexed-keys the key index already knows every stored key (it follows the inserts below too).
  const index = indexed?.keysOf(collection);
  const keys = index ? undefined : keysOf(collection);
  const stored = index ? (pk, rk) => index.has(pk, rk) : (pk, rk) => keys.has(`${pk}\u0000${rk}`);
  const added = new Set();
  const modified = truncatedISO8061Date(new Date(), true, true);
  const eTag = newTableEntityEtag(modified);
  const entities = [];
  let line = 0;
  for (const text of body.split("\n")) {
    line++;
    if (text.trim() === "") {
      continue;
    }
    let properties;
    try {
      properties = JSON.parse(text);
    } catch (e) {
      throw new BadPreload(`line ${line}: ${e.message}`);
    }
    if (typeof properties?.PartitionKey !== "string" || typeof properties.RowKey !== "string") {
      throw new BadPreload(`line ${line}: PartitionKey and RowKey must be strings`);
    }
    const key = `${properties.PartitionKey}\u0000${properties.RowKey}`;
    if (stored(properties.PartitionKey, properties.RowKey) || added.has(key)) {
      throw new BadPreload(`line ${line}: ${properties.PartitionKey}/${properties.RowKey} already exists`);
    }
    added.add(key);
    // What TableHandler.insertEntity stores: the request's properties, normalized by Azurite's own EDM types.
    const entity = { PartitionKey: properties.PartitionKey, RowKey: properties.RowKey, properties, lastModifiedTime: modified, eTag };
    try {
      new NormalizedEntity(entity).normalize();
    } catch (e) {
      throw new BadPreload(`line ${line}: ${e.message}`);
    }
    entities.push(entity);
  }

  // LokiJS keeps its binary indexes sorted on every insert (a splice each); rebuilding them once after the whole
  // request is far cheaper. They are whole and adaptive again before the next REST request runs (this is synchronous).
  // With --indexed-keys they may be lazy already (key-index.js): then they stay so, marked stale.
  const adaptive = collection.adaptiveBinaryIndices;
  collection.adaptiveBinaryIndices = false;
  const inserted = [];
  try {
    for (const entity of entities) {
      inserted.push(collection.insert(entity));
    }
  } catch (e) {
    // All or none, as for a batch: take back what this request added before the failure.
    for (const entity of inserted) {
      collection.remove(entity);
    }
    throw e;
  } finally {
    collection.adaptiveBinaryIndices = adaptive;
    if (adaptive) {
      for (const property of Object.keys(collection.binaryIndices)) {
        collection.ensureIndex(property, true);
      }
    }
  }
  if (!index) {
    for (const key of added) {
      keys.add(key);
    }
    known.get(collection.name).maxId = collection.maxId;
  }
  return entities.length;
}

async function main() {
  const port = option("--port");
  const controlPort = option("--controlPort");
  configLogger(false);

  // host, port, keepAliveTimeout, metadataDBPath, enableDebugLog, enableAccessLog, accessLogWriteStream,
  // debugLogFilePath, loose, skipApiVersionCheck, cert, key, pwd, oauth, disableProductStyleUrl, isMemoryPersistence
  const configuration = new TableConfiguration("127.0.0.1", port, undefined, path.join(__dirname, "in-memory"), false, false,
    undefined, undefined, false, true, "", "", "", undefined, false, true);
  const server = new TableServer(configuration);
  const indexed = process.argv.includes("--indexed-keys") ? keyIndex.install(server.metadataStore) : undefined;
  await server.start();

  const control = http.createServer((request, response) => {
    const answer = (status, body) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    const url = new URL(request.url, "http://localhost");
    if (request.method === "GET" && url.pathname === "/index-stats") {
      answer(200, { indexed: indexed !== undefined, checking: process.env.PLATFORM_BENCH_INDEX_CHECK === "1", ...keyIndex.stats });
      return;
    }
    if (request.method !== "POST" || url.pathname !== "/preload" || !url.searchParams.get("table")) {
      answer(404, { error: "POST /preload?table=NAME with NDJSON" });
      return;
    }

    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
      }
    });
    request.on("end", () => {
      if (size > MAX_BODY_BYTES) {
        answer(400, { error: `body over ${MAX_BODY_BYTES} bytes: send fewer rows a request` });
        return;
      }
      try {
        answer(200, { inserted: preload(server.metadataStore, indexed, url.searchParams.get("table"), Buffer.concat(chunks).toString("utf8")) });
      } catch (e) {
        answer(e instanceof BadPreload ? 400 : 500, { error: e.message });
      }
    });
  });
  await new Promise((resolve, reject) => control.listen(controlPort, "127.0.0.1", resolve).on("error", reject));

  const stop = () => {
    if (indexed) {
      const s = keyIndex.stats;
      console.error(`preloadable-table.js: key index served ${s.keyLookups} key lookups and ${s.narrowedQueries} key-range queries `
        + `(${s.stockQueries} other queries by Azurite's code); ${process.env.PLATFORM_BENCH_INDEX_CHECK === "1"
          ? `${s.checked} compared with Azurite's own answer, all identical` : "not compared with Azurite's answer"}`
        + (s.fellBack > 0 ? `; ${s.fellBack} tables fell back to Azurite's code` : ""));
    }
    control.close();
    server.close().finally(() => process.exit(0));
  };
  process.once("SIGINT", stop).once("SIGTERM", stop);
}

main().catch((e) => {
  console.error(`preloadable-table.js: ${e.stack ?? e}`);
  process.exit(1);
});
