package channels

import (
	"testing"
	"time"
)

func TestRosterCacheExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	rc := newRosterCache(time.Second)
	rc.now = func() time.Time { return now }
	rc.put("#a", memberList{room: "#a"})
	tests := []struct {
		after time.Duration
		hit   bool
	}{
		{0, true},
		{999 * time.Millisecond, true},
		{1001 * time.Millisecond, false},
	}
	for _, tt := range tests {
		now = time.Unix(1000, 0).Add(tt.after)
		if _, hit := rc.get("#a"); hit != tt.hit {
			t.Errorf("after %v: hit %v, want %v", tt.after, hit, tt.hit)
		}
	}
	if _, hit := rc.get("#b"); hit {
		t.Error("a room never cached was found")
	}
	rc.put("#b", memberList{room: "#b"}) // sweeps the expired #a
	if len(rc.entries) != 1 {
		t.Errorf("%d entries cached, want only #b", len(rc.entries))
	}
}
