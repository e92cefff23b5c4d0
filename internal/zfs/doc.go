// Package zfs drives OpenZFS on a host through a remote.Runner: it builds the
// zpool and zfs command lines, runs them, and parses what they print. It
// imports nothing from Terraform.
//
// It reads OpenZFS's JSON output (zpool status -j, zpool get -j, zfs get -j)
// on 2.3 and later and falls back to the scripted "-H -p" output on 2.1 and
// 2.2, which Debian 12 and Ubuntu 22.04/24.04 still ship. Both parsers are
// tested on output recorded from a real OpenZFS 2.3 VM.
//
// go-zfs (github.com/mistifyio/go-zfs) runs its commands only through a local
// exec and cannot be pointed at a remote host, so this package is the thin
// command layer instead.
//
// Reads are cheap in round trips: the first dataset read of a pool runs one
// recursive "zfs get" for the whole pool and every other read in the same
// provider operation is served from it (see Registry); any write through a
// client of the host drops that cache.
//
// A pool or dataset that does not exist is an error matching ErrNotFound
// under errors.Is: ZFS said so, and the reads a resource drops state on
// (LookupPool, Dataset) also verified that `zpool import` does not list the
// pool. A pool that is there but not imported is ErrNotImported instead, and
// an unreachable host or any other failure matches neither.
package zfs
