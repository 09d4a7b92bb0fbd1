package store

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
)

// queryFunc runs a read query on one store and returns the result set and its close.
type queryFunc func(ctx context.Context, sql string, args ...any) (rowIter, func(), error)

// detailQueries are a store's dialect of the queries readDetails makes: the domains that
// a condition selects (run first, then the condition's arguments), then the hosts and
// the addresses of a list of names (run, list) and the measurements of a list of
// addresses from a vantage (run, vantage, list).
type detailQueries struct {
	domains, hosts, addresses, measurements string
	// nsChecks selects a vantage's SOA checks of a list of domains (run, vantage, list).
	nsChecks string
	// list turns names into the query parameter that holds them.
	list func([]string) any
}

// addrCacheSize bounds a Details call's cache of addresses (a generation of genCache):
// a decoded address with its measurements takes about 1.2 KB, so at most 20 MB. Larger
// generations did not pay on a 100k-domain synthetic crawl, whose shared addresses
// beyond its 600 name server addresses are used by a few domains of any rank each: 16,384
// cost 100 MB more peak memory (GC) for no less CPU.
const addrCacheSize = 8192

// newAddrCache returns the cache of the addresses one Details call has read, with their
// measurements, for the pages after: a run's name servers serve domains of every rank,
// and reading and decoding them again for each page read seven times the run's unique
// addresses (a crawl of 100,000 domains, pages of 500: 320,000 reads of 44,884
// addresses).
func newAddrCache() *genCache[netip.Addr, result.Address] {
	return newGenCache[netip.Addr, result.Address](addrCacheSize)
}

// readDetails reads the domains a condition selects (cond is fixed SQL text of the
// store's package, never input), with their hosts, addresses and the measurements of
// vantage v. The addresses that cache holds are not read again (cache may be nil).
func readDetails(ctx context.Context, q queryFunc, dq *detailQueries, cache *genCache[netip.Addr, result.Address],
	run int64, v, cond string, args ...any) ([]Detail, error) {
	rows, done, err := q(ctx, dq.domains+cond, append([]any{run}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	page, names, err := readDomains(rows)
	done()
	if err != nil {
		return nil, err
	}
	var hosts map[string]result.Host
	var ips []netip.Addr
	err = readList(ctx, q, dq.hosts, "hosts", func(rs rowIter) (err error) {
		hosts, ips, err = readHosts(rs)
		return err
	}, run, dq.list(names))
	addrs := make(map[netip.Addr]result.Address, len(ips))
	var missing []string
	for _, ip := range ips {
		if a, ok := cache.get(ip); ok {
			addrs[ip] = a
		} else {
			missing = append(missing, ip.String())
		}
	}
	var read map[netip.Addr]result.Address
	if err == nil && len(missing) > 0 {
		err = readList(ctx, q, dq.addresses, "addresses", func(rs rowIter) (err error) {
			read, err = readAddresses(rs)
			return err
		}, run, dq.list(missing))
		if err == nil {
			err = readList(ctx, q, dq.measurements, "measurements", func(rs rowIter) error {
				return readMeasurements(rs, read)
			}, run, v, dq.list(missing))
		}
	}
	for ip, a := range read {
		addrs[ip] = a
		cache.put(ip, a)
	}
	if err == nil {
		domainNames := make([]string, len(page))
		for i, d := range page {
			domainNames[i] = d.Name
		}
		err = readList(ctx, q, dq.nsChecks, "name server checks", func(rs rowIter) error {
			return readNSChecks(rs, page)
		}, run, v, dq.list(domainNames))
	}
	if err != nil {
		return nil, err
	}
	for i := range page {
		page[i].HostsByName, page[i].Addrs = hosts, addrs
	}
	return page, nil
}

// storedHosts reads the run's hosts among names (Store.Hosts) with a store's queries.
func storedHosts(ctx context.Context, q queryFunc, dq *detailQueries, run int64, names []string) (map[string]result.Host, error) {
	var hosts map[string]result.Host
	err := readList(ctx, q, dq.hosts, "hosts", func(rs rowIter) (err error) {
		hosts, _, err = readHosts(rs)
		return err
	}, run, dq.list(names))
	return hosts, err
}

// readList runs one query of a list and reads its rows with read.
func readList(ctx context.Context, q queryFunc, sql, what string, read func(rowIter) error, args ...any) error {
	rows, done, err := q(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer done()
	return read(rows)
}

// detailPage is how many domains Details reads at a time: a page's domains share the
// reads of their name servers (1,000 rather than 500: half the queries, and fewer
// addresses read again than the address cache alone leaves). A page's domains are held
// with their measurements while the summary encodes them: 2,000 cost 36 MiB more peak
// memory on the 100k crawl than 1,000, for no measurable time.
const detailPage = 1000

// eachNamed calls fn for every domain that page gives for names, detailPage names at a
// time.
func eachNamed(names []string, fn func(Detail) error, page func(names []string) ([]Detail, error)) error {
	for start := 0; start < len(names); start += detailPage {
		ds, err := page(names[start:min(start+detailPage, len(names))])
		if err != nil {
			return err
		}
		for _, d := range ds {
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachDetail calls fn for every domain that pages of detailPage domains (in (rank, name)
// order, after a cursor) give. Memory stays bounded by the page size.
func eachDetail(fn func(Detail) error, page func(after Cursor) ([]Detail, error)) error {
	after := Cursor{Rank: -1}
	for {
		ds, err := page(after)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(ds) < detailPage {
			return nil
		}
		last := ds[len(ds)-1]
		after = Cursor{Rank: last.Rank, Name: last.Name}
	}
}
