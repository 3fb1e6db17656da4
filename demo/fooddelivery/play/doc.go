// Package play is `tide demo food-delivery` as a library: it finds (or starts) a tide, applies the food-delivery
// bundle through the control-plane API as `tide apply` does, waits for every resource to be Ready, plays a
// compressed day with demo/fooddelivery/scenario, and reports.
//
// Invariants: the order service's database is an absolute path the demo chooses (ORDER_DB, injected into the
// applied Service), so the demo reads exactly what the service's instances write, whichever directory they run
// in; a tide the demo started itself is stopped before Run returns unless Options.Keep is set, in which case the
// caller owns it (Result.Platform).
package play
