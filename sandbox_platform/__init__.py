"""The sandbox shop platform: the platform gateway API, the Kuaidi100-compatible carrier API and
the staff/buyer inboxes on loopback, for `make run`, the tests and the benchmarks. A test double,
kept out of the production package: nothing in ``aftersales`` imports it."""
