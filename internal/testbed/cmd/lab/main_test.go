package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// fakePeer records how the lab builds and starts it.
type fakePeer struct {
	name      string
	buildTime time.Duration // how long its build takes
	events    *[]string
	t         *testing.T
}

func (p fakePeer) Name() string { return p.name }

func (p fakePeer) Build(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		p.t.Errorf("%s: the build runs under a deadline", p.name)
	}
	if testbed.InStartPhase(ctx) {
		p.t.Errorf("%s: the build runs in a start phase", p.name)
	}
	*p.events = append(*p.events, "build "+p.name)
	time.Sleep(p.buildTime)
	return nil
}

func (p fakePeer) Start(ctx context.Context, dir string) (peerRecord, error) {
	*p.events = append(*p.events, "start "+p.name)
	if _, ok := ctx.Deadline(); !ok {
		return peerRecord{}, fmt.Errorf("%s: the start has no deadline", p.name)
	}
	if !testbed.InStartPhase(ctx) {
		return peerRecord{}, fmt.Errorf("%s: the start is not marked as a start phase", p.name)
	}
	if err := ctx.Err(); err != nil {
		return peerRecord{}, fmt.Errorf("%s: the start deadline ran out before the start: %w", p.name, err)
	}
	return peerRecord{Name: p.name, Dir: dir}, nil
}

// No start deadline covers a build: every build runs first, without a
// deadline, and builds far longer than the start timeout do not use up any
// peer's start time (the first `make demo` on a fresh machine failed that way:
// the ZFS VM's start deadline ran out while its image was being built).
func TestBuildsRunBeforeAnyStartDeadline(t *testing.T) {
	var events []string
	l := &lab{dir: t.TempDir(), startTimeout: 50 * time.Millisecond}
	slow := 4 * l.startTimeout
	peers := []peer{
		fakePeer{name: "a", buildTime: slow, events: &events, t: t},
		startOnlyPeer{name: "b", events: &events},
		fakePeer{name: "c", buildTime: slow, events: &events, t: t},
	}
	ctx := context.Background()
	if err := buildPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	st := &labState{Version: stateVersion, Dir: l.dir}
	if err := l.startPeers(ctx, st, peers); err != nil {
		t.Fatal(err)
	}
	want := []string{"build a", "build c", "start a", "start b", "start c"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("order: got %v, want %v", events, want)
	}
	if len(st.Peers) != 3 {
		t.Fatalf("lab.json records %d peers, want 3", len(st.Peers))
	}
}

// The lab's real peers that need builds implement builder, so that their
// builds run in the build phase.
func TestLabPeersThatBuildAreBuilders(t *testing.T) {
	for _, name := range []string{"zfs", "backup", "kube", "bmc"} {
		found := false
		for _, p := range labPeers {
			if p.Name() == name {
				found = true
				if _, ok := p.(builder); !ok {
					t.Errorf("lab peer %s builds what it needs but is not a builder", name)
				}
			}
		}
		if !found {
			t.Errorf("no lab peer %s", name)
		}
	}
}

// startOnlyPeer has nothing to build.
type startOnlyPeer struct {
	name   string
	events *[]string
}

func (p startOnlyPeer) Name() string { return p.name }

func (p startOnlyPeer) Start(ctx context.Context, dir string) (peerRecord, error) {
	*p.events = append(*p.events, "start "+p.name)
	if !testbed.InStartPhase(ctx) || ctx.Err() != nil {
		return peerRecord{}, fmt.Errorf("%s: bad start context", p.name)
	}
	return peerRecord{Name: p.name, Dir: dir}, nil
}
