package conndir

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the shared state of Memory directories: one per process,
// for the embedded single-node mode (and for tests that run several nodes
// in one process).
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]*Record
	expiry  map[string]time.Time // live or unclaimed records → deadline
	pending map[string]time.Time // claimed records → lease deadline
	users   map[string]map[string]struct{}
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		records: map[string]*Record{},
		expiry:  map[string]time.Time{},
		pending: map[string]time.Time{},
		users:   map[string]map[string]struct{}{},
	}
}

// Memory is a Directory kept in a MemoryStore.
type Memory struct {
	store *MemoryStore
	opts  Options
	local *local
}

var _ Directory = (*Memory)(nil)

// NewMemory returns one node's Directory on store.
func NewMemory(store *MemoryStore, opts Options) (*Memory, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Memory{store: store, opts: opts, local: newLocal()}, nil
}

// Node implements Directory.
func (m *Memory) Node() string { return m.opts.Node }

// Register implements Directory.
func (m *Memory) Register(_ context.Context, r Record) error {
	r = normalize(r, m.opts.Node)
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[r.ID] = &r
	s.expiry[r.ID] = time.Now().Add(m.opts.TTL)
	if s.users[r.User] == nil {
		s.users[r.User] = map[string]struct{}{}
	}
	s.users[r.User][r.ID] = struct{}{}
	m.local.add(r)
	return nil
}

// Update implements Directory.
func (m *Memory) Update(_ context.Context, id string, c Change) error {
	if !c.LastActivity.IsZero() {
		if !m.local.touch(id, c.LastActivity) {
			return ErrNotFound
		}
	} else if _, ok := m.local.user(id); !ok {
		return ErrNotFound
	}
	if !c.SetRooms && c.Close == nil {
		return nil
	}
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return ErrNotFound
	}
	if c.SetRooms {
		r.Rooms = slices.Clone(c.Rooms)
	}
	if c.Close != nil {
		cl := *c.Close
		r.Closed = &cl
	}
	return nil
}

// Unregister implements Directory.
func (m *Memory) Unregister(_ context.Context, id string) (bool, error) {
	m.local.remove(id)
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.expiry[id]; !ok {
		return false, nil
	}
	delete(s.expiry, id)
	s.forget(id)
	return true, nil
}

// forget deletes a record and its user index entry; s.mu is held.
func (s *MemoryStore) forget(id string) {
	if r, ok := s.records[id]; ok {
		delete(s.users[r.User], id)
		if len(s.users[r.User]) == 0 {
			delete(s.users, r.User)
		}
	}
	delete(s.records, id)
}

// Get implements Directory.
func (m *Memory) Get(_ context.Context, id string) (Record, error) {
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id, time.Now())
	if !ok {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// live returns a copy of a live record; s.mu is held.
func (s *MemoryStore) live(id string, now time.Time) (Record, bool) {
	deadline, ok := s.expiry[id]
	r := s.records[id]
	if !ok || r == nil || !deadline.After(now) || r.Closed != nil {
		return Record{}, false
	}
	c := *r
	c.Rooms = slices.Clone(r.Rooms)
	return c, true
}

// ListByUser implements Directory.
func (m *Memory) ListByUser(_ context.Context, user string) ([]Record, error) {
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []Record
	for id := range s.users[user] {
		if r, ok := s.live(id, now); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Heartbeat implements Directory.
func (m *Memory) Heartbeat(_ context.Context) ([]string, error) {
	b := m.local.snapshot()
	s := m.store
	s.mu.Lock()
	now := time.Now()
	var lost, lostClaims []string
	for _, ob := range b.own {
		if _, ok := s.expiry[ob.id]; !ok {
			lost = append(lost, ob.id)
			continue
		}
		s.expiry[ob.id] = now.Add(m.opts.TTL)
		if r := s.records[ob.id]; r != nil && !ob.activity.IsZero() {
			r.LastActivity = ob.activity
		}
	}
	for _, id := range b.claimed {
		if _, ok := s.pending[id]; !ok {
			lostClaims = append(lostClaims, id)
			continue
		}
		s.pending[id] = now.Add(m.opts.TTL)
	}
	s.mu.Unlock()
	m.local.drop(lost, lostClaims)
	return lost, nil
}

// Sweep implements Directory.
func (m *Memory) Sweep(_ context.Context) ([]Record, error) {
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []Record
	claim := func(id string) {
		s.pending[id] = now.Add(m.opts.TTL)
		r := Record{ID: id}
		if p := s.records[id]; p != nil {
			r = *p
			r.Rooms = slices.Clone(p.Rooms)
		}
		m.local.claim(id, r.User)
		out = append(out, r)
	}
	for id, deadline := range s.expiry {
		if len(out) >= m.opts.SweepLimit {
			break
		}
		if !deadline.After(now) {
			delete(s.expiry, id)
			claim(id)
		}
	}
	for id, deadline := range s.pending {
		if len(out) >= m.opts.SweepLimit {
			break
		}
		if !deadline.After(now) {
			claim(id)
		}
	}
	return out, nil
}

// Ack implements Directory.
func (m *Memory) Ack(_ context.Context, id string) error {
	m.local.unclaim(id)
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		delete(s.pending, id)
		s.forget(id)
	}
	return nil
}

// normalize fills the defaults of a record being registered by node.
func normalize(r Record, node string) Record {
	r.Node = node
	if r.ConnectedAt.IsZero() {
		r.ConnectedAt = time.Now()
	}
	if r.LastActivity.IsZero() {
		r.LastActivity = r.ConnectedAt
	}
	r.Rooms = slices.Clone(r.Rooms)
	r.Closed = nil
	return r
}

// Release implements Directory.
func (m *Memory) Release(_ context.Context, id string) error {
	m.local.unclaim(id)
	return nil
}
