package conndir

import (
	"sync"
	"time"
)

// local is what one node remembers of the records it holds and the claims
// it made, so that Heartbeat knows what to refresh.
type local struct {
	mu      sync.Mutex
	own     map[string]*ownRecord
	dirty   map[string]struct{} // own ids whose lastActivity is not yet written
	claimed map[string]string   // id → user, claimed and not acknowledged
}

// ownRecord is a record this node registered.
type ownRecord struct {
	user         string
	lastActivity time.Time
	dirty        bool // lastActivity not yet written
	// rec is the record as registered, rooms and closing kept up to date,
	// so that a Redis that lost its data can be given it again.
	rec Record
}

func newLocal() *local {
	return &local{own: map[string]*ownRecord{}, dirty: map[string]struct{}{}, claimed: map[string]string{}}
}

func (l *local) add(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.own[r.ID] = &ownRecord{user: r.User, lastActivity: r.LastActivity, rec: r}
	delete(l.dirty, r.ID)
}

// change applies a Change to an own record's copy.
func (l *local) change(id string, c Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.own[id]
	if !ok {
		return
	}
	if c.SetRooms {
		r.rec.Rooms = append([]string(nil), c.Rooms...)
	}
	if c.Close != nil {
		closed := *c.Close
		r.rec.Closed = &closed
	}
}

// record returns an own record as the node knows it now.
func (l *local) record(id string) (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.own[id]
	if !ok {
		return Record{}, false
	}
	rec := r.rec
	rec.LastActivity = r.lastActivity
	return rec, true
}

// user returns the user of an own record.
func (l *local) user(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.own[id]
	if !ok {
		return "", false
	}
	return r.user, true
}

// touch keeps a newer last activity for the next heartbeat.
func (l *local) touch(id string, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.own[id]
	if !ok {
		return false
	}
	if at.After(r.lastActivity) {
		r.lastActivity = at
		r.dirty = true
		l.dirty[id] = struct{}{}
	}
	return true
}

// remove forgets an own record and returns its user.
func (l *local) remove(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.own[id]
	delete(l.own, id)
	delete(l.dirty, id)
	if !ok {
		return "", false
	}
	return r.user, true
}

func (l *local) claim(id, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.claimed[id] = user
}

// unclaim forgets a claim and returns its user.
func (l *local) unclaim(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.claimed[id]
	delete(l.claimed, id)
	return u, ok
}

// beat is the state one heartbeat writes.
type beat struct {
	own     []ownBeat
	claimed []string
}

// ownBeat is one own record in a heartbeat; activity is zero when
// unchanged since the last heartbeat.
type ownBeat struct {
	id, user string
	activity time.Time
}

// snapshot returns every own record and claim, and marks last activities
// written; if the heartbeat fails, restore marks them dirty again.
func (l *local) snapshot() beat {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b beat
	for id, r := range l.own {
		ob := ownBeat{id: id, user: r.user}
		if r.dirty {
			ob.activity = r.lastActivity
			r.dirty = false
		}
		b.own = append(b.own, ob)
	}
	clear(l.dirty)
	b.claimed = l.claimIDs()
	return b
}

// changes returns only the own records with a last activity not yet
// written, marking them written, and every claim: what a heartbeat writes
// when it need not visit every record. If the heartbeat fails, restore
// marks the activities dirty again.
func (l *local) changes() beat {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b beat
	for id := range l.dirty {
		r := l.own[id]
		b.own = append(b.own, ownBeat{id: id, user: r.user, activity: r.lastActivity})
		r.dirty = false
	}
	clear(l.dirty)
	b.claimed = l.claimIDs()
	return b
}

// claimIDs lists the claims; l.mu is held.
func (l *local) claimIDs() []string {
	ids := make([]string, 0, len(l.claimed))
	for id := range l.claimed {
		ids = append(ids, id)
	}
	return ids
}

// owned lists every own record, without activities.
func (l *local) owned() []ownBeat {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ownBeat, 0, len(l.own))
	for id, r := range l.own {
		out = append(out, ownBeat{id: id, user: r.user})
	}
	return out
}

// has reports whether id is an own record.
func (l *local) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.own[id]
	return ok
}

// restore marks the activities of a failed heartbeat dirty again.
func (l *local) restore(b beat) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ob := range b.own {
		if r, ok := l.own[ob.id]; ok && !ob.activity.IsZero() && !r.dirty {
			r.dirty = true
			l.dirty[ob.id] = struct{}{}
		}
	}
}

// drop forgets own records and claims that another node took.
func (l *local) drop(ownLost, claimsLost []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ownLost {
		delete(l.own, id)
		delete(l.dirty, id)
	}
	for _, id := range claimsLost {
		delete(l.claimed, id)
	}
}
