package testkit

import (
	"errors"
	"sort"
	"sync"
)

// Member is the event log of a long-running group member, one JSON line
// per event, as tests/groups.rs reads them:
// {"ev":"assigned","gen":G,"member":ID,"parts":[...]} (everything it owns now),
// {"ev":"revoked","parts":[...]}, {"ev":"records","r":[rec...]},
// {"ev":"closed"}.
type Member struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func NewMember() *Member {
	return &Member{owned: map[int32]bool{}}
}

func (m *Member) ownedSorted() []int32 {
	parts := make([]int32, 0, len(m.owned))
	for p := range m.owned {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	return parts
}

// Assigned adds parts to what the member owns and reports the whole set.
func (m *Member) Assigned(generation int32, member string, parts []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		m.owned[p] = true
	}
	Emit(map[string]any{"ev": "assigned", "gen": generation, "member": member, "parts": m.ownedSorted()})
}

// Replaced reports that the member owns exactly parts (eager protocols).
func (m *Member) Replaced(generation int32, member string, parts []int32) {
	m.mu.Lock()
	m.owned = map[int32]bool{}
	m.mu.Unlock()
	m.Assigned(generation, member, parts)
}

// Revoked removes parts from what the member owns.
func (m *Member) Revoked(parts []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		delete(m.owned, p)
	}
	if parts == nil {
		parts = []int32{}
	}
	Emit(map[string]any{"ev": "revoked", "parts": parts})
}

// Records reports consumed records (testkit.Rec rows).
func (m *Member) Records(recs [][]any) {
	if len(recs) > 0 {
		Emit(map[string]any{"ev": "records", "r": recs})
	}
}

// Closed reports that the member committed and left the group.
func (m *Member) Closed() {
	Emit(map[string]any{"ev": "closed"})
}

// Code is the Kafka error code in err's chain, found through the client's
// own error type E; nil for no error, the message for any other error (so a
// test comparing codes fails and shows it).
func Code[E error](err error, code func(E) int16) any {
	if err == nil {
		return nil
	}
	var e E
	if errors.As(err, &e) {
		return code(e)
	}
	return err.Error()
}
