package measure

// DefaultWindow is how many addresses have their probes queued in the scheduler at
// once. It bounds the scheduler's memory (a few KB per queued address) whatever the
// run's size, while leaving it enough addresses to keep its workers busy within the
// per-address limits.
const DefaultWindow = 4096

// localWorkers bounds the PTR queries (to our resolver) and GeoIP lookups in flight.
// A PTR lookup waits for the resolver, which may wait for slow reverse servers, so it
// takes many in flight to keep pace with the probes when their limits are lifted (16
// lagged the probes by a minute in bench-net's 20,000-domain run); the resolve.Client's
// own bound (MaxInFlight) still caps what reaches the resolver.
const localWorkers = 128
