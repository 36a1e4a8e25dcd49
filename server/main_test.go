package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its tests: every
// node, connection and client goroutine must end with the test that made it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
