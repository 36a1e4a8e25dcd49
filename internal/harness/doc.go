// Package harness starts and stops the real processes Switchboard is
// tested and measured against: redis-server (alone or as a small Redis
// Cluster) and switchboard nodes built from this module, each on free
// loopback ports. It returns errors rather than failing a test, so that
// both the test helpers (internal/testredis, internal/testnode) and
// cmd/switchboard-bench are built on it.
package harness
