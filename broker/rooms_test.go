package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// testActiveTopics is the conformance check of Active: a topic is listed
// from its first present user to its last, with its count, in name order
// and paged; a crashed node's topics drop out once their users expire.
func testActiveTopics(t *testing.T, be backend) {
	ctx := context.Background()
	n := startNode(t, be, testOpts)
	// Other subtests share the deployment: only topics under "active/"
	// are this test's, and listings start there.
	const start = "active/"
	list := func(q ActiveQuery) ActivePage {
		t.Helper()
		if q.After == "" {
			q.After = start
		}
		page, err := n.Active(ctx, q)
		if err != nil {
			t.Fatalf("Active(%+v): %v", q, err)
		}
		mine := page.Topics[:0:0]
		for _, tc := range page.Topics {
			if strings.HasPrefix(tc.Topic, start) {
				mine = append(mine, tc)
			}
		}
		page.Topics = mine
		return page
	}
	if page := list(ActiveQuery{}); len(page.Topics) != 0 {
		t.Fatalf("a fresh deployment lists %v", page.Topics)
	}
	for i, topic := range []string{"active/c", "active/a", "active/b"} {
		for u := 0; u <= i; u++ {
			must[bool](t)(n.AddPresence(ctx, topic, fmt.Sprintf("u%d", u), fmt.Sprintf("%s-c%d", topic, u), nil))
		}
	}
	// A second connection of a user does not count twice.
	must[bool](t)(n.AddPresence(ctx, "active/b", "u0", "active/b-extra", nil))
	want := []TopicCount{{"active/a", 2}, {"active/b", 3}, {"active/c", 1}}
	if got := list(ActiveQuery{}); !slices.Equal(got.Topics, want) {
		t.Fatalf("Active = %+v, want %v", got, want)
	}
	first := list(ActiveQuery{Limit: 2})
	if !slices.Equal(first.Topics, want[:2]) || first.Next != "active/b" {
		t.Fatalf("first page = %+v, want %v next active/b", first, want[:2])
	}
	if rest := list(ActiveQuery{After: first.Next, Limit: 1}); !slices.Equal(rest.Topics, want[2:]) {
		t.Fatalf("second page = %+v, want %v", rest, want[2:])
	}
	// The last user leaving takes the topic out; another user's leaving
	// only lowers the count.
	must[bool](t)(n.RemovePresence(ctx, "active/c", "u0", "active/c-c0", nil))
	must[bool](t)(n.RemovePresence(ctx, "active/a", "u1", "active/a-c1", nil))
	want = []TopicCount{{"active/a", 1}, {"active/b", 3}}
	if got := list(ActiveQuery{}); !slices.Equal(got.Topics, want) {
		t.Fatalf("after leaves Active = %+v, want %v", got.Topics, want)
	}
	if !be.multiNode {
		return
	}
	// A crashed node's topic disappears once its presence expired, even
	// though no node swept it.
	opts := testOpts
	opts.PresenceTTL = 1200 * time.Millisecond
	crashed := startNode(t, be, opts)
	must[bool](t)(crashed.AddPresence(ctx, "active/ghost", "g", "g1", nil))
	if got := list(ActiveQuery{}); !slices.Contains(got.Topics, TopicCount{"active/ghost", 1}) {
		t.Fatalf("Active = %+v, want active/ghost listed", got.Topics)
	}
	_ = crashed.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := list(ActiveQuery{})
		if slices.Equal(got.Topics, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Active = %+v after the crash, want %v", got.Topics, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
