package store

// migrations are applied in order; the store records how many have run. Never edit a
// migration that has shipped: append a new one.
var migrations = []string{
	// 1: runs, domains, hosts, addresses.
	`CREATE TABLE runs (
		id          INTEGER PRIMARY KEY,
		started     TEXT NOT NULL,
		finished    TEXT NOT NULL DEFAULT '',
		list_name   TEXT NOT NULL,
		list_sha256 TEXT NOT NULL DEFAULT '',
		options     TEXT NOT NULL DEFAULT '{}',
		vantage     TEXT NOT NULL DEFAULT '',
		state       TEXT NOT NULL,
		loaded      INTEGER NOT NULL DEFAULT 0,
		skipped     INTEGER NOT NULL DEFAULT 0,
		duplicates  INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE domains (
		run_id    INTEGER NOT NULL REFERENCES runs(id),
		name      TEXT NOT NULL,
		rank      INTEGER NOT NULL,
		tld       TEXT NOT NULL,
		suffix    TEXT NOT NULL,
		done      INTEGER NOT NULL DEFAULT 0,
		status    TEXT NOT NULL DEFAULT '',
		error     TEXT NOT NULL DEFAULT '',
		null_mx   INTEGER NOT NULL DEFAULT 0,
		soa_mname TEXT, soa_rname TEXT,
		soa_serial INTEGER, soa_refresh INTEGER, soa_retry INTEGER, soa_expire INTEGER, soa_minimum INTEGER,
		soa_primary TEXT, soa_inhouse INTEGER, soa_total INTEGER,
		hosts     TEXT NOT NULL DEFAULT '[]',
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;
	CREATE INDEX domains_order ON domains (run_id, rank, name);
	CREATE TABLE hosts (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		name   TEXT NOT NULL,
		status TEXT NOT NULL,
		cname  TEXT NOT NULL DEFAULT '',
		v4     TEXT NOT NULL DEFAULT '',
		v6     TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;
	CREATE TABLE addresses (
		run_id   INTEGER NOT NULL REFERENCES runs(id),
		ip       TEXT NOT NULL,
		family   INTEGER NOT NULL,
		valid    INTEGER,
		class    TEXT,
		prefixid TEXT,
		iid      TEXT,
		PRIMARY KEY (run_id, ip)
	) WITHOUT ROWID;`,
	// 2: per-address measurements, one row per probe kind, the typed result as JSON.
	`CREATE TABLE measurements (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		ip     TEXT NOT NULL,
		kind   TEXT NOT NULL,
		data   TEXT NOT NULL,
		PRIMARY KEY (run_id, ip, kind)
	) WITHOUT ROWID;`,
	// 3: DNS truth (issue 9): per-lookup outcomes of a host, where a domain's NS hosts
	// came from, the parent's delegation, and the SOA check of each (domain, name server
	// address) pair.
	`ALTER TABLE hosts ADD COLUMN a_status TEXT NOT NULL DEFAULT '';
	ALTER TABLE hosts ADD COLUMN aaaa_status TEXT NOT NULL DEFAULT '';
	ALTER TABLE domains ADD COLUMN ns_source TEXT NOT NULL DEFAULT '';
	ALTER TABLE domains ADD COLUMN delegation TEXT NOT NULL DEFAULT '';
	CREATE TABLE ns_checks (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		domain TEXT NOT NULL,
		ip     TEXT NOT NULL,
		data   TEXT NOT NULL,
		PRIMARY KEY (run_id, domain, ip)
	) WITHOUT ROWID;`,
}
