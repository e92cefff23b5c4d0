// Package rke2 holds the homelab_rke2_cluster resource and its import: the
// schema and model, the plan-time checks, the orchestration of the nodes'
// install, join, upgrade and removal over SSH, and the CRUD methods.
package rke2
