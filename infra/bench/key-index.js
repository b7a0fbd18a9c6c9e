// An exact index of each table's keys for preloadable-table.js --indexed-keys: it serves Azurite's key lookups and its
// single-partition key-range queries without the walks that make stock Azurite quadratic, and answers exactly what
// Azurite's own code answers (PLATFORM_BENCH_INDEX_CHECK=1 runs both and exits on the first difference).
//
// Stock LokiTableMetadataStore (the pinned 3.35):
// - every insert, update, merge, delete and point read looks the row up with collection.findOne({PartitionKey,
//   RowKey}): LokiJS narrows by its PartitionKey index, then tests every row of the partition for the RowKey;
// - queryTableEntities runs the filter over every row of the table, sorts all that remain after the continuation
//   point, then keeps one page.
// Here, per entity collection: partition key -> { rows: Map RowKey -> document, keys: its RowKeys in order (SortedKeys) }. It follows
// the collection through LokiJS's own 'insert', 'update' and 'delete' events, which fire synchronously for every change
// that really happened (Azurite's inserts, replace = remove + insert, merge = update with a new object, deletes, batch
// rollbacks, and the preload), so it cannot miss a path that goes through the collection. A dropped table drops its
// collection and with it the index. Anything the index cannot represent exactly (a key that is not a string, two rows
// with one key, a size that disagrees with the collection) switches that collection back to the stock code for good.
"use strict";

const path = require("path");

const azurite = path.join(__dirname, "..", "node_modules", "azurite", "dist", "src", "table", "persistence");
const QueryGenerator = require(path.join(azurite, "LokiTableStoreQueryGenerator")).default;
const parseQuery = require(path.join(azurite, "QueryInterpreter", "QueryParser")).default;
const nodes = path.join(azurite, "QueryInterpreter", "QueryNodes");
const AndNode = require(path.join(nodes, "AndNode")).default;
const EqualsNode = require(path.join(nodes, "EqualsNode")).default;
const GreaterThanNode = require(path.join(nodes, "GreaterThanNode")).default;
const GreaterThanEqualNode = require(path.join(nodes, "GreaterThanEqualNode")).default;
const LessThanNode = require(path.join(nodes, "LessThanNode")).default;
const LessThanEqualNode = require(path.join(nodes, "LessThanEqualNode")).default;
const IdentifierNode = require(path.join(nodes, "IdentifierNode")).default;
const ConstantNode = require(path.join(nodes, "ConstantNode")).default;

const stats = { keyLookups: 0, narrowedQueries: 0, stockQueries: 0, checked: 0, fellBack: 0 };

function failCheck(what) {
  console.error(`preloadable-table.js: INDEX CHECK FAILED: ${what}`);
  process.exit(3);
}

class KeyIndex {
  constructor(collection) {
    this.collection = collection;
    this.partitions = new Map();
    this.size = 0;
    this.broken = undefined;
    for (const doc of collection.data) {
      this.add(doc);
    }
    collection.on("insert", (docs) => {
      for (const doc of Array.isArray(docs) ? docs : [docs]) {
        this.add(doc);
      }
    });
    collection.on("update", (doc, old) => this.replace(old, doc));
    collection.on("delete", (doc) => this.remove(doc));
  }

  // Whether the index may answer for the collection right now. The size test is O(1) and catches any change that
  // bypassed the events.
  usable() {
    if (this.broken === undefined && this.size !== this.collection.data.length) {
      this.breaks(`holds ${this.size} rows, the collection ${this.collection.data.length}`);
    }
    return this.broken === undefined;
  }

  breaks(reason) {
    if (this.broken === undefined) {
      this.broken = reason;
      stats.fellBack++;
      console.error(`preloadable-table.js: key index of ${this.collection.name} off (stock code from now on): ${reason}`);
      if (process.env.PLATFORM_BENCH_INDEX_CHECK === "1") {
        failCheck(`key index of ${this.collection.name}: ${reason}`);
      }
    }
  }

  add(doc) {
    const { PartitionKey: pk, RowKey: rk } = doc;
    if (typeof pk !== "string" || typeof rk !== "string") {
      this.breaks("a key that is not a string");
      return;
    }
    let partition = this.partitions.get(pk);
    if (!partition) {
      partition = { rows: new Map(), keys: new SortedKeys() };
      this.partitions.set(pk, partition);
    }
    if (partition.rows.has(rk)) {
      this.breaks(`two rows with the key ${pk}/${rk}`);
      return;
    }
    partition.rows.set(rk, doc);
    partition.keys.add(rk);
    this.size++;
  }

  remove(doc) {
    const partition = this.partitions.get(doc.PartitionKey);
    if (!partition || partition.rows.get(doc.RowKey) !== doc) {
      this.breaks(`a removed row ${doc.PartitionKey}/${doc.RowKey} it did not hold`);
      return;
    }
    partition.rows.delete(doc.RowKey);
    partition.keys.remove(doc.RowKey);
    this.size--;
    if (partition.rows.size === 0) {
      this.partitions.delete(doc.PartitionKey);
    }
  }

  replace(old, doc) {
    if (old.PartitionKey === doc.PartitionKey && old.RowKey === doc.RowKey) {
      const partition = this.partitions.get(doc.PartitionKey);
      if (!partition || partition.rows.get(doc.RowKey) !== old) {
        this.breaks(`an updated row ${doc.PartitionKey}/${doc.RowKey} it did not hold`);
        return;
      }
      partition.rows.set(doc.RowKey, doc);
      return;
    }
    this.remove(old);
    this.add(doc);
  }

  get(pk, rk) {
    return this.partitions.get(pk)?.rows.get(rk) ?? null;
  }
}

// A partition's RowKeys in Azurite's order (JavaScript string comparison, which is what its default sort uses), kept
// as a list of sorted blocks of at most 2 * BLOCK keys, so that an insert or delete anywhere costs a search and a splice
// of one block, and a range read starts with a search. An import interleaves several ascending key families (items, SKU
// rows, outbox and change-log rows) and deletes outbox rows as it goes: a single sorted list then had to be sorted
// again (and its deleted keys dropped) before each range query, which took about 70 ms per query of a 200,000-row
// partition, 2.6 s of the table service's time in one items import (its relay's and change log's queries).
const BLOCK = Number(process.env.PLATFORM_BENCH_INDEX_BLOCK) > 0 ? Number(process.env.PLATFORM_BENCH_INDEX_BLOCK) : 512;

class SortedKeys {
  constructor() {
    this.blocks = [];
  }

  // The first block whose last key is >= key (blocks.length when there is none).
  blockOf(key) {
    const blocks = this.blocks;
    let low = 0;
    let high = blocks.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const block = blocks[middle];
      if (block[block.length - 1] < key) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }

  add(key) {
    const blocks = this.blocks;
    if (blocks.length === 0) {
      blocks.push([key]);
      return;
    }
    const at = Math.min(this.blockOf(key), blocks.length - 1);
    const block = blocks[at];
    if (!(key < block[block.length - 1])) {
      block.push(key);
    } else {
      block.splice(lowerBound(block, key), 0, key);
    }
    if (block.length > 2 * BLOCK) {
      blocks.splice(at, 1, block.slice(0, BLOCK), block.slice(BLOCK));
    }
  }

  remove(key) {
    const at = this.blockOf(key);
    const block = this.blocks[at];
    if (block === undefined) {
      return;
    }
    const i = lowerBound(block, key);
    if (block[i] === key) {
      block.splice(i, 1);
      if (block.length === 0) {
        this.blocks.splice(at, 1);
      }
    }
  }

  // The keys >= from (all when from is undefined), in order.
  *from(from) {
    const blocks = this.blocks;
    let at = from === undefined ? 0 : this.blockOf(from);
    let i = at < blocks.length && from !== undefined ? lowerBound(blocks[at], from) : 0;
    for (; at < blocks.length; at++, i = 0) {
      const block = blocks[at];
      for (; i < block.length; i++) {
        yield block[i];
      }
    }
  }
}

// The first position of keys (sorted) whose key is >= bound.
function lowerBound(keys, bound) {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle] < bound) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

// { id, op, value } of `id op 'text'` (either way round), else undefined: only string constants, as the interpreter
// compares them with === and JavaScript's < and >.
const operators = new Map([[EqualsNode, "eq"], [GreaterThanNode, "gt"], [GreaterThanEqualNode, "ge"], [LessThanNode, "lt"], [LessThanEqualNode, "le"]]);
const mirrored = { eq: "eq", gt: "lt", ge: "le", lt: "gt", le: "ge" };

function comparison(node) {
  const op = operators.get(node.constructor);
  if (op === undefined) {
    return undefined;
  }
  const { left, right } = node;
  if (left.constructor === IdentifierNode && right.constructor === ConstantNode && typeof right.value === "string") {
    return { id: left.identifier, op, value: right.value };
  }
  if (right.constructor === IdentifierNode && left.constructor === ConstantNode && typeof left.value === "string") {
    return { id: right.identifier, op: mirrored[op], value: left.value };
  }
  return undefined;
}

// What the filter lets the index narrow to: the one partition its top-level conjunction pins with PartitionKey eq, and
// the RowKey range its other conjuncts bound. Every row the filter can match lies in there, because `and` is `&&` of
// its two sides; the filter itself still decides which of them match. Undefined if no conjunct pins the partition.
function planOf(filter) {
  if (typeof filter !== "string" || filter === "" || filter === "true" || filter === "false") {
    return undefined;
  }
  let tree;
  try {
    tree = parseQuery(filter);
  } catch {
    return undefined;
  }
  const conjuncts = [];
  const pending = [tree];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node.constructor === AndNode) {
      pending.push(node.left, node.right);
    } else {
      conjuncts.push(node);
    }
  }
  let partition;
  let from; // smallest RowKey that can match
  let to; // largest RowKey that can match
  for (const node of conjuncts) {
    const c = comparison(node);
    if (c === undefined) {
      continue;
    }
    if (c.id === "PartitionKey" && c.op === "eq" && partition === undefined) {
      partition = c.value;
    } else if (c.id === "RowKey") {
      if ((c.op === "eq" || c.op === "ge" || c.op === "gt") && (from === undefined || c.value > from)) {
        from = c.value;
      }
      if ((c.op === "eq" || c.op === "le" || c.op === "lt") && (to === undefined || c.value < to)) {
        to = c.value;
      }
    }
  }
  return partition === undefined ? undefined : { partition, from, to };
}

// Installs the index on the store's entity collections, present and future. Without the check it also turns LokiJS's
// own key indexes lazy (see attach).
function install(store) {
  const check = process.env.PLATFORM_BENCH_INDEX_CHECK === "1";
  const indexes = new WeakMap();

  const attach = (collection) => {
    if (!collection || indexes.has(collection)) {
      return;
    }
    const index = new KeyIndex(collection);
    indexes.set(collection, index);
    if (!check) {
      // LokiJS keeps its PartitionKey and RowKey binary indexes sorted on every write (a splice of an array as long as
      // the table, so each insert costs more the fuller the table, and a figure's second writer pays more than its
      // first). Only findOne reads them, and the index above answers those. Non-adaptive, LokiJS marks them stale on a
      // write and rebuilds one before a find reads it (its documented lazy mode), so any lookup left to Azurite's code
      // still reads a whole index. The check keeps them adaptive, as stock, since it runs stock findOne every time.
      collection.adaptiveBinaryIndices = false;
      collection.flagBinaryIndexesDirty();
    }
    const stockFindOne = collection.findOne;
    collection.findOne = function (query) {
      const keys = query && typeof query === "object" ? Object.keys(query) : [];
      if (keys.length !== 2 || typeof query.PartitionKey !== "string" || typeof query.RowKey !== "string" || !index.usable()) {
        return stockFindOne.call(this, query);
      }
      stats.keyLookups++;
      const doc = index.get(query.PartitionKey, query.RowKey);
      if (check) {
        const stock = stockFindOne.call(this, query);
        if (stock !== doc) {
          failCheck(`${collection.name} findOne(${JSON.stringify(query)}): index ${describe(doc)}, Azurite ${describe(stock)}`);
        }
        stats.checked++;
      }
      return doc;
    };
  };

  for (const collection of store.db.collections) {
    if (collection.name !== store.TABLES_COLLECTION && collection.name !== store.SERVICES_COLLECTION) {
      attach(collection);
    }
  }
  const createCollectionForTable = store.createCollectionForTable;
  store.createCollectionForTable = function (tableModel) {
    createCollectionForTable.call(this, tableModel);
    attach(this.db.getCollection(this.getTableCollectionName(tableModel.account, tableModel.table)));
  };

  const stockQuery = store.queryTableEntities;
  store.queryTableEntities = async function (context, account, table, queryOptions, nextPartitionKey, nextRowKey) {
    const collection = this.getEntityCollection(account, table, context);
    const index = indexes.get(collection);
    const plan = index ? planOf(queryOptions.filter) : undefined;
    if (!plan || !index.usable()) {
      stats.stockQueries++;
      return stockQuery.apply(this, arguments);
    }
    stats.narrowedQueries++;
    const answer = narrowed.call(this, index, plan, context, queryOptions, nextPartitionKey, nextRowKey);
    if (check) {
      const stock = await stockQuery.apply(this, arguments);
      const same = answer[1] === stock[1] && answer[2] === stock[2] && answer[0].length === stock[0].length
        && answer[0].every((doc, i) => doc === stock[0][i]);
      if (!same) {
        failCheck(`${collection.name} query ${JSON.stringify(queryOptions.filter)} after ${nextPartitionKey}/${nextRowKey}: `
          + `index ${answer[0].length} rows ${describe(answer[0][0])}..${describe(answer[0][answer[0].length - 1])} next ${answer[1]}/${answer[2]}, `
          + `Azurite ${stock[0].length} rows ${describe(stock[0][0])}..${describe(stock[0][stock[0].length - 1])} next ${stock[1]}/${stock[2]}`);
      }
      stats.checked++;
    }
    return answer;
  };

  return {
    keysOf(collection) {
      const index = indexes.get(collection);
      return index && index.usable() ? { has: (pk, rk) => index.get(pk, rk) !== null } : undefined;
    },
  };
}

// Stock queryTableEntities over the plan's partition range instead of the whole table: Azurite's own filter function,
// its own continuation test (copied verbatim below), rows in its order, one page of maxResults + 1, and its own
// adjustQueryResultforTop for the continuation headers. `this` is the store.
function narrowed(index, plan, context, queryOptions, nextPartitionKey, nextRowKey) {
  const queryWhere = QueryGenerator.generateQueryForPersistenceLayer(queryOptions, context);
  const maxResults = this.getMaxResultsOption(queryOptions);
  const decodedNextPartitionKey = this.decodeContinuationHeader(nextPartitionKey);
  const decodedNextRowKey = this.decodeContinuationHeader(nextRowKey);
  const afterContinuation = (data) => {
    if (decodedNextPartitionKey !== undefined) {
      if (data.PartitionKey > decodedNextPartitionKey) {
        return true;
      }
    }
    if (decodedNextRowKey !== undefined) {
      if (data.RowKey >= decodedNextRowKey &&
        (data.PartitionKey === decodedNextPartitionKey ||
          data.PartitionKey === undefined)) {
        return true;
      }
      return false;
    }
    if (decodedNextPartitionKey !== undefined) {
      if (data.PartitionKey < decodedNextPartitionKey) {
        return false;
      }
    }
    return true;
  };

  const partition = index.partitions.get(plan.partition);
  // Where the continuation lets this partition start (the test above decides; this only skips what it would refuse).
  let from = plan.from;
  let none = false;
  if (decodedNextPartitionKey === undefined) {
    none = decodedNextRowKey !== undefined;
  } else if (!(plan.partition > decodedNextPartitionKey)) {
    if (plan.partition !== decodedNextPartitionKey) {
      none = true;
    } else if (decodedNextRowKey !== undefined && (from === undefined || decodedNextRowKey > from)) {
      from = decodedNextRowKey;
    }
  }

  const result = [];
  if (!none && partition !== undefined) {
    for (const key of partition.keys.from(from)) {
      if (result.length >= maxResults + 1 || (plan.to !== undefined && key > plan.to)) {
        break;
      }
      const doc = partition.rows.get(key);
      // Loki's Resultset.where keeps a row only when the function returns exactly true.
      if (queryWhere(doc) === true && afterContinuation(doc) === true) {
        result.push(doc);
      }
    }
  }
  const response = this.adjustQueryResultforTop(result, maxResults);
  return [result, response.nextPartitionKeyResponse, response.nextRowKeyResponse];
}

function describe(doc) {
  return doc ? `${JSON.stringify(doc.PartitionKey)}/${JSON.stringify(doc.RowKey)}#${doc.$loki}` : String(doc);
}

module.exports = { install, stats, planOf };
