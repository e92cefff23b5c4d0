// Package restic holds everything of the provider about restic: the
// homelab_restic_repo and homelab_restic_backup resources with their
// imports, the homelab_restic_snapshots data source, and what they share
// (how a repository is reached, attribute descriptions, error explanations).
// The commands are internal/restic's.
package restic
