// Package connection holds how the provider's resources and data sources
// reach what they manage: the provider's ssh {}, bmc {} and kubernetes {}
// blocks and their models (the ssh block's schema is one attribute table
// rendered into each of the framework's three schema flavours), the one
// merge rule of a resource's block over the provider's defaults, the
// provider data handed to Configure, and the one entry point that turns an
// ssh block into a runner (deciding the local-machine fallback).
//
// The provider's values may be unknown while planning (they often come from
// other resources); nothing here fails on an unknown value until a
// connection is actually needed.
package connection
