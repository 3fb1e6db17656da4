// Package fooddelivery holds the pieces of the seed's food-delivery application that do not depend on the platform:
//
//   - the order message (the seed's JSON) with strict parsing and validation that names the offending field;
//   - the order store, SQLite in one file (modernc.org/sqlite), safe for several order-service processes writing at
//     once and idempotent on orderId, which also records dead-lettered events;
//   - the order service's HTTP handler, which receives order CloudEvents, does simulated work and stores the order;
//   - the compressed day: a deterministic order rate with breakfast, lunch and dinner peaks and quiet valleys;
//   - the demo summary (sent, processed, duplicates, dead-lettered, lost, latency, instances) and the effect chart (SVG).
//
// The simulator that produces orders into RocketMQ is in the subpackage simulator, so the order service does not link
// the RocketMQ client.
package fooddelivery
