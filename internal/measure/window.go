package measure

// DefaultWindow is how many addresses have their probes queued in the scheduler at
// once. It bounds the scheduler's memory (a few KB per queued address) whatever the
// run's size, while leaving it enough addresses to keep its workers busy within the
// per-address limits.
const DefaultWindow = 4096

// localWorkers bounds the PTR queries (to our resolver) and GeoIP lookups in flight.
const localWorkers = 16
