package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestParseMarker(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		phase  byte
		pub    int
		seq    int
		sentAt time.Duration
	}{
		{in: "m|3|17|123456789|xxxx", ok: true, phase: 'm', pub: 3, seq: 17, sentAt: 123456789},
		{in: "w|0|0|0|", ok: true, phase: 'w'},
		{in: "m|3|17|123456789"},            // no closing bar
		{in: "m|3|17|"},                     // missing field
		{in: "m3|17|1|"},                    // no bar after the phase
		{in: "m|-1|17|1|"},                  // negative publisher
		{in: "m|a|17|1|"},                   // not a number
		{in: "m||17|1|"},                    // empty field
		{in: ""},                            // nothing
		{in: "m|99999999999999999999|1|1|"}, // overflows int64
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			phase, pub, seq, sentAt, ok := parseMarker([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (phase != tt.phase || pub != tt.pub || seq != tt.seq || sentAt != tt.sentAt) {
				t.Errorf("= %c %d %d %v, want %c %d %d %v", phase, pub, seq, sentAt, tt.phase, tt.pub, tt.seq, tt.sentAt)
			}
		})
	}
}

// TestSpreading: every room has members on every node whenever there are
// at least as many clients per room as nodes, and publishers (the first
// clients) are one per room, on alternating nodes.
func TestSpreading(t *testing.T) {
	tests := []struct{ clients, rooms, nodes int }{
		{clients: 40, rooms: 20, nodes: 2},
		{clients: 40, rooms: 4, nodes: 2},
		{clients: 90, rooms: 9, nodes: 3},
		{clients: 60, rooms: 6, nodes: 4},
		{clients: 5, rooms: 5, nodes: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d clients %d rooms %d nodes", tt.clients, tt.rooms, tt.nodes), func(t *testing.T) {
			on := make([]map[int]bool, tt.rooms) // nodes each room has members on
			members := make([]int, tt.rooms)
			for r := range on {
				on[r] = map[int]bool{}
			}
			for i := range tt.clients {
				r, n := roomOf(i, tt.rooms), nodeOf(i, tt.rooms, tt.nodes)
				if r < 0 || r >= tt.rooms || n < 0 || n >= tt.nodes {
					t.Fatalf("client %d: room %d node %d out of range", i, r, n)
				}
				on[r][n] = true
				members[r]++
			}
			for r := range on {
				if len(on[r]) != min(tt.nodes, members[r]) {
					t.Errorf("room %d has members on %d node(s), want %d", r, len(on[r]), min(tt.nodes, members[r]))
				}
			}
			for p := range min(tt.rooms, tt.clients) {
				if roomOf(p, tt.rooms) != p {
					t.Errorf("publisher %d is in room %d, want its own room", p, roomOf(p, tt.rooms))
				}
				if nodeOf(p, tt.rooms, tt.nodes) != p%tt.nodes {
					t.Errorf("publisher %d is on node %d, want %d", p, nodeOf(p, tt.rooms, tt.nodes), p%tt.nodes)
				}
			}
		})
	}
	if roomName(7) != "bench-007" {
		t.Errorf("roomName(7) = %q", roomName(7))
	}
}

func newMessageFrame(text string) []byte {
	return fmt.Appendf(nil, `{"channel":"chat-room","message":{"type":"NewMessage","contents":{"room":"bench-000","user":"u","message":%q,"id":"1-0"}}}`, text)
}

// TestReceiveAndTally drives a fleet's accounting with frames as the
// nodes send them: measured deliveries, warm-up ones, duplicates, losses
// and Error frames.
func TestReceiveAndTally(t *testing.T) {
	f := newFleet(loadPlan{Clients: 4, Rooms: 2, Publishers: 2, Rate: 10, Span: time.Second})
	f.members = []int{2, 2}
	// Publisher 0 sent seq 0 and 1 while measuring, publisher 1 seq 0.
	f.sent[0][0].Store(true)
	f.sent[0][1].Store(true)
	f.sent[1][0].Store(true)
	f.published.Store(3)

	frames := []struct {
		frame []byte
		at    time.Duration
	}{
		{newMessageFrame("sbb|m|0|0|1000|xx"), 3000}, // both members get 0/0
		{newMessageFrame("sbb|m|0|0|1000|xx"), 5000}, //
		{newMessageFrame("sbb|m|0|1|2000|xx"), 4000}, // one member of two gets 0/1: one lost
		{newMessageFrame("sbb|m|1|0|1000|xx"), 2000}, // 1/0 three times: one duplicate
		{newMessageFrame("sbb|m|1|0|1000|xx"), 2000}, //
		{newMessageFrame("sbb|m|1|0|1000|xx"), 2000}, //
		{newMessageFrame("sbb|w|0|9|1000|xx"), 9000}, // warm-up: not measured
		{newMessageFrame("sbb|m|7|0|1000|xx"), 9000}, // unknown publisher
		{newMessageFrame("sbb|m|garbage"), 9000},     // unreadable
		{[]byte(`{"channel":"chat-room","message":{"type":"JoinedRoom","contents":{"room":"r","user":"u"}}}`), 0},
		{[]byte(`{"channel":"chat-room","message":{"type":"Error","contents":{"code":"rate-limited","message":"slow down"}}}`), 0},
	}
	for _, fr := range frames {
		f.receive(fr.frame, fr.at)
	}

	got := f.tally()
	want := tally{Published: 3, Expected: 6, Delivered: 6, Warm: 1, Missing: 1, LossyMsg: 1, Duplicates: 1}
	if got != want {
		t.Errorf("tally = %+v\nwant    %+v", got, want)
	}
	if f.expected() != 6 {
		t.Errorf("expected = %d, want 6", f.expected())
	}
	if s := f.errFrames.String(); s != "2× bench: unreadable message, 1× rate-limited" {
		t.Errorf("errFrames = %q", s)
	}
	// Latencies are receive - send: 2, 4, 2, 1, 1, 1 µs; 1000 ns falls in
	// the bucket [1000, 1007].
	if q0 := f.lat.quantile(0); f.lat.count() != 6 || f.lat.maximum() != 4000 || q0 < 1000 || q0 > 1007 {
		t.Errorf("latency: %d samples, max %v, min %v; want 6, 4µs, 1µs", f.lat.count(), f.lat.maximum(), q0)
	}
}

func TestCounter(t *testing.T) {
	var c counter
	if c.String() != "none" || c.total() != 0 {
		t.Fatalf("empty counter = %q, %d", c.String(), c.total())
	}
	for _, k := range []string{"b", "a", "c", "c", "a", "c"} {
		c.add(k)
	}
	if got, want := c.String(), "3× c, 2× a, 1× b"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if c.total() != 6 {
		t.Errorf("total = %d, want 6", c.total())
	}
}

func TestDisconnectCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{websocket.CloseError{Code: websocket.StatusPolicyViolation, Reason: "too slow"}, `closed 1008 "too slow"`},
		{fmt.Errorf("read: %w", websocket.CloseError{Code: websocket.StatusGoingAway}), `closed 1001 ""`},
		{errors.New("failed to read frame header: read tcp 127.0.0.1:5555->127.0.0.1:6666: EOF"), "EOF"},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := disconnectCause(tt.err); got != tt.want {
			t.Errorf("disconnectCause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name      string
		delivered int64 // of 4 expected
		quiet     time.Duration
		limit     time.Duration
		atLeast   time.Duration
		atMost    time.Duration
	}{
		{name: "everything arrived", delivered: 4, quiet: time.Hour, limit: time.Hour, atMost: time.Second},
		{name: "deliveries stopped", delivered: 2, quiet: 50 * time.Millisecond, limit: time.Hour, atLeast: 50 * time.Millisecond, atMost: 10 * time.Second},
		{name: "limit", delivered: 2, quiet: time.Hour, limit: 50 * time.Millisecond, atLeast: 50 * time.Millisecond, atMost: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(loadPlan{Clients: 2, Rooms: 1, Publishers: 1, Rate: 10, Span: time.Second})
			f.members = []int{2}
			f.sent[0][0].Store(true)
			f.sent[0][1].Store(true)
			f.delivered.Store(tt.delivered)
			took := f.drain(context.Background(), tt.quiet, tt.limit)
			if took < tt.atLeast || took > tt.atMost {
				t.Errorf("drain took %v, want between %v and %v", took, tt.atLeast, tt.atMost)
			}
		})
	}
}
