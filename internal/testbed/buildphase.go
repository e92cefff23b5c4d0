package testbed

import (
	"context"
	"errors"
	"fmt"
)

// ErrBuildDuringStart is returned by a build that was asked for while a peer
// was starting. A peer's start runs under a deadline sized for starting
// (seconds to a few minutes); a cold build takes far longer (the ZFS VM image
// about 6 minutes, kube-apiserver about 4), so a build under that deadline
// would make every first run on a fresh machine fail. Builds belong before
// the start: call the Ensure* functions first, without a deadline.
var ErrBuildDuringStart = errors.New("a build was started inside a peer's start deadline")

// startPhaseKey marks a context as a peer's start phase.
type startPhaseKey struct{}

// StartPhase returns ctx marked as the start of a peer. Under such a
// context every Ensure* function still returns what is cached, but refuses
// to build what is not, with ErrBuildDuringStart: whatever a start needs
// must have been built before its deadline began.
func StartPhase(ctx context.Context) context.Context {
	return context.WithValue(ctx, startPhaseKey{}, true)
}

// InStartPhase reports whether ctx was marked by StartPhase.
func InStartPhase(ctx context.Context) bool {
	v, _ := ctx.Value(startPhaseKey{}).(bool)
	return v
}

// allowBuild is called by every build of the testbed (after its cache
// missed, before it starts work): it refuses the build under a start phase.
func allowBuild(ctx context.Context, what string) error {
	if InStartPhase(ctx) {
		return fmt.Errorf("%s is not built yet and cannot be built while a peer starts: %w", what, ErrBuildDuringStart)
	}
	return nil
}
