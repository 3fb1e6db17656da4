// Package gcfloor keeps the Go garbage collector from starting a cycle before the heap has grown to a floor.
//
// Why: tide's processes keep a small live heap (about 10 MB for the whole data plane) but allocate quickly on the
// event path (the official RocketMQ client and net/http allocate ~45 KB per event end to end). With the default
// GOGC=100 the heap goal is twice the live heap, ~20 MB, so at 2,000 events/s the collector runs ten times a
// second; on two cores each cycle's concurrent mark takes a quarter of the CPU and assists for 5–10 ms, and the
// events that arrive meanwhile are what make the p99 (docs/BENCHMARKS.md measures 5–7 ms p99 with the default
// and about 1 ms with a 256 MiB floor on the same path). A floor makes the goal max(floor, live × (1+GOGC/100)):
// small heaps collect rarely, large heaps behave exactly as GOGC says, and memory is bounded by the floor plus
// what GOGC would allow anyway.
//
// The mechanism is the runtime's own knob: after every cycle (a finalizer on a sentinel object runs once per
// cycle) the GC percentage is set so that the next goal is the floor, given the live heap and the GC roots that
// cycle marked. Nothing runs between cycles. A process that stops allocating gets its memory back: after the runtime's
// periodic collection (every two minutes when nothing else collects) the floor steps aside and the free memory is
// returned to the system, until the process gets busy again. The setting is process-wide, so only a program's main (and benchmarks that model
// it) install a floor.
package gcfloor
