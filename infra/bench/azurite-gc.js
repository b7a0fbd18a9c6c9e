// Loaded into the benchmarks' Azurite with `node --require` (infra/bench/common.sh): makes the in-memory extent
// store's garbage collection delete its unreferenced extents in one pass instead of one at a time. Nothing else of
// Azurite changes, and what the collection deletes is the same.
//
// Why: every 60 s Azurite's queue (and blob) service marks and sweeps the extents that message bodies were written to.
// The in-memory store deletes each unreferenced extent from a LokiJS collection indexed on its id, and every single
// removal rebuilds that index: 10,000 removals take about 46 s on this machine, 1,000 a few seconds. Node runs the
// sweep on the one thread that also serves every queue and blob request, so the emulator stops answering meanwhile.
// At 50 webhook events a second the webhook benchmark saw one such pause a minute: a 5.6 s sweep (in Azurite's debug
// log) made every delivery of that window late, whichever pass it fell into. Azure Storage has no such pause, and a
// figure about the app must not measure it.
"use strict";

const path = require("path");

const azurite = path.join(__dirname, "..", "node_modules", "azurite", "dist", "src", "common", "persistence");
const MemoryExtentStore = require(path.join(azurite, "MemoryExtentStore")).default;
const LokiExtentMetadataStore = require(path.join(azurite, "LokiExtentMetadataStore")).default;

const deleteOneByOne = MemoryExtentStore.prototype.deleteExtents;

MemoryExtentStore.prototype.deleteExtents = async function deleteExtents(extents) {
  if (!(this.metadataStore instanceof LokiExtentMetadataStore)) {
    return deleteOneByOne.call(this, extents);
  }

  const ids = new Set(extents);
  for (const id of ids) {
    this.chunks.delete(this.categoryName, id);
  }

  // One removal of every matching document: LokiJS then rebuilds the id index once.
  const collection = this.metadataStore.db.getCollection(this.metadataStore.EXTENTS_COLLECTION);
  collection.chain().where((extent) => ids.has(extent.id)).remove();
  this.logger.info(`MemoryExtentStore:deleteExtents() Deleted ${ids.size} extents in one pass (infra/bench/azurite-gc.js)`);
  return ids.size;
};
