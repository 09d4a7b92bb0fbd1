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
	// 3: the exact list each run crawls, in chunks, so that a resume reads the same list
	// whatever happened to the file since.
	`CREATE TABLE list_chunks (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		seq    INTEGER NOT NULL,
		data   BLOB NOT NULL,
		PRIMARY KEY (run_id, seq)
	) WITHOUT ROWID;`,
	// 4: what the website reads instead of every domain: the per-domain IPv6 summary
	// (sort keys fold the role's value and the rank into one integer, so every sorted
	// page is an index range), aggregates per run/TLD/country/AS, located addresses, and
	// the changes between two runs.
	`CREATE TABLE domain_summary (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		name   TEXT NOT NULL,
		tld    TEXT NOT NULL,
		rank   INTEGER NOT NULL,
		status TEXT NOT NULL,
		ns TEXT NOT NULL, mx TEXT NOT NULL, www TEXT NOT NULL, ntp TEXT NOT NULL,
		ns_reach TEXT NOT NULL, mx_reach TEXT NOT NULL, www_reach TEXT NOT NULL, ntp_reach TEXT NOT NULL,
		broken TEXT NOT NULL,
		k_ns INTEGER NOT NULL, k_mx INTEGER NOT NULL, k_www INTEGER NOT NULL, k_ntp INTEGER NOT NULL,
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;
	CREATE INDEX domain_summary_rank ON domain_summary (run_id, tld, rank, name);
	CREATE INDEX domain_summary_name ON domain_summary (run_id, tld, name);
	CREATE INDEX domain_summary_ns ON domain_summary (run_id, tld, k_ns, name);
	CREATE INDEX domain_summary_mx ON domain_summary (run_id, tld, k_mx, name);
	CREATE INDEX domain_summary_www ON domain_summary (run_id, tld, k_www, name);
	CREATE INDEX domain_summary_ntp ON domain_summary (run_id, tld, k_ntp, name);
	CREATE INDEX domain_summary_history ON domain_summary (name, run_id);
	CREATE TABLE aggregates (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		kind   TEXT NOT NULL,
		key    TEXT NOT NULL,
		data   TEXT NOT NULL,
		PRIMARY KEY (run_id, kind, key)
	) WITHOUT ROWID;
	CREATE INDEX aggregates_trend ON aggregates (kind, key, run_id);
	CREATE TABLE address_summary (
		run_id  INTEGER NOT NULL REFERENCES runs(id),
		ip      TEXT NOT NULL,
		family  INTEGER NOT NULL,
		cc      TEXT NOT NULL,
		asn     INTEGER NOT NULL,
		domains INTEGER NOT NULL,
		data    TEXT NOT NULL,
		PRIMARY KEY (run_id, ip)
	) WITHOUT ROWID;
	CREATE INDEX address_summary_cc ON address_summary (run_id, cc, domains);
	CREATE INDEX address_summary_asn ON address_summary (run_id, asn, domains);
	CREATE TABLE summaries (
		run_id INTEGER PRIMARY KEY REFERENCES runs(id),
		built  TEXT NOT NULL
	);
	CREATE TABLE run_diffs (
		run_a INTEGER NOT NULL,
		run_b INTEGER NOT NULL,
		data  TEXT NOT NULL,
		PRIMARY KEY (run_a, run_b)
	);
	CREATE TABLE domain_changes (
		run_a  INTEGER NOT NULL,
		run_b  INTEGER NOT NULL,
		role   TEXT NOT NULL,
		change TEXT NOT NULL,
		rank   INTEGER NOT NULL,
		name   TEXT NOT NULL,
		PRIMARY KEY (run_a, run_b, role, change, rank, name)
	) WITHOUT ROWID;`,
	// 5: DNS truth (issue 9): per-lookup outcomes of a host, where a domain's NS hosts
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
	// 6: the probe stage's input (issue 8), written by Save with the domains: one row per
	// address with its roles (a bit set, store.Roles) and the names its probes need, each
	// with the rank of the domain that gave it; and the (domain, name server address)
	// pairs of the name server checks.
	`CREATE TABLE targets (
		run_id    INTEGER NOT NULL REFERENCES runs(id),
		ip        TEXT NOT NULL,
		roles     INTEGER NOT NULL,
		www       TEXT NOT NULL,
		www_rank  INTEGER NOT NULL,
		mx        TEXT NOT NULL,
		mx_rank   INTEGER NOT NULL,
		host      TEXT NOT NULL,
		host_rank INTEGER NOT NULL,
		PRIMARY KEY (run_id, ip)
	) WITHOUT ROWID;
	CREATE TABLE ns_targets (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		domain TEXT NOT NULL,
		ip     TEXT NOT NULL,
		host   TEXT NOT NULL,
		PRIMARY KEY (run_id, domain, ip)
	) WITHOUT ROWID;`,
	// 7: each domain's document (its detail with its own hosts, addresses and checks,
	// deflated JSON), written with the summary, so that a domain's page is one row read.
	// Runs summarised before it get theirs from summary.KeepCurrent (serve) or
	// bench-web; until then their pages read the domain's tables.
	`CREATE TABLE domain_docs (
		run_id INTEGER NOT NULL REFERENCES runs(id),
		name   TEXT NOT NULL,
		doc    BLOB NOT NULL,
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;`,
	// 8: vantage points (issue 11): a run's probes and name server checks may be taken
	// from several vantages, so the vantage that took a measurement is part of its key
	// (the DNS stage, the targets and the summary stay the run's). Existing rows get
	// their run's vantage. A new primary key needs a new table: one INSERT ... SELECT,
	// in the old key's order, which is the new one's too (a run has one vantage so
	// far), so the copy only appends. A row of no run keeps vantage ''.
	`CREATE TABLE measurements_v8 (
		run_id  INTEGER NOT NULL REFERENCES runs(id),
		vantage TEXT NOT NULL,
		ip      TEXT NOT NULL,
		kind    TEXT NOT NULL,
		data    TEXT NOT NULL,
		PRIMARY KEY (run_id, vantage, ip, kind)
	) WITHOUT ROWID;
	INSERT INTO measurements_v8 (run_id, vantage, ip, kind, data)
		SELECT m.run_id, coalesce(r.vantage, ''), m.ip, m.kind, m.data
		FROM measurements m LEFT JOIN runs r ON r.id = m.run_id ORDER BY m.run_id, m.ip, m.kind;
	DROP TABLE measurements;
	ALTER TABLE measurements_v8 RENAME TO measurements;
	CREATE TABLE ns_checks_v8 (
		run_id  INTEGER NOT NULL REFERENCES runs(id),
		vantage TEXT NOT NULL,
		domain  TEXT NOT NULL,
		ip      TEXT NOT NULL,
		data    TEXT NOT NULL,
		PRIMARY KEY (run_id, vantage, domain, ip)
	) WITHOUT ROWID;
	INSERT INTO ns_checks_v8 (run_id, vantage, domain, ip, data)
		SELECT c.run_id, coalesce(r.vantage, ''), c.domain, c.ip, c.data
		FROM ns_checks c LEFT JOIN runs r ON r.id = c.run_id ORDER BY c.run_id, c.domain, c.ip;
	DROP TABLE ns_checks;
	ALTER TABLE ns_checks_v8 RENAME TO ns_checks;`,
	// 9: nothing here. PostgreSQL's migration 9 indexes ns_targets by address for the
	// distributed probe jobs; SQLite never reads them so (an index would only slow the
	// DNS stage's writes).
	`SELECT 1;`,
	// 10: the runs whose final summary has begun (SetSummaryFinal): a provisional
	// summary's writes (of a run still crawled, by serve) are refused from then on.
	`CREATE TABLE summary_final (
		run_id INTEGER PRIMARY KEY REFERENCES runs(id)
	);`,
}
