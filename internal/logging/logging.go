// Package logging is how the provider writes to Terraform's log: every
// message of the provider goes through it, and it may be called from any
// goroutine.
//
// terraform-plugin-log applies masks (tflog.MaskAllFieldValuesStrings and
// the other Mask functions, which the provider uses to hide secrets) by
// rewriting in place the fields map that the logger options in the context
// hold, on every log call, even one the log level then drops
// (terraform-plugin-log issue 246). Goroutines logging through one context,
// such as the RKE2 resource's parallel node operations, thus wrote one map
// at once and the provider died with "fatal error: concurrent map writes"
// (issue 20). Here each call logs through a context of its own, derived from
// the caller's, whose logger options (fields map included) are a fresh
// copy: masking writes only to that copy, and the map shared through the
// caller's context is only ever read.
package logging

import (
	"context"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// Trace logs msg at trace level, like tflog.Trace.
func Trace(ctx context.Context, msg string, fields ...map[string]any) {
	tflog.Trace(own(ctx), msg, fields...)
}

// Debug logs msg at debug level, like tflog.Debug.
func Debug(ctx context.Context, msg string, fields ...map[string]any) {
	tflog.Debug(own(ctx), msg, fields...)
}

// Info logs msg at info level, like tflog.Info.
func Info(ctx context.Context, msg string, fields ...map[string]any) {
	tflog.Info(own(ctx), msg, fields...)
}

// Warn logs msg at warn level, like tflog.Warn.
func Warn(ctx context.Context, msg string, fields ...map[string]any) {
	tflog.Warn(own(ctx), msg, fields...)
}

// Error logs msg at error level, like tflog.Error.
func Error(ctx context.Context, msg string, fields ...map[string]any) {
	tflog.Error(own(ctx), msg, fields...)
}

// Pool is the SSH connection pool's logger (a remote.Logger): its progress
// messages are debug messages.
func Pool(ctx context.Context, msg string, fields map[string]any) {
	Debug(ctx, msg, fields)
}

// own returns ctx with a private copy of the provider logger's options.
// Every tflog option function copies the options, fields map included,
// before changing them; masking no further message strings changes nothing
// else. The copy reads the caller's map, which nothing writes any more.
func own(ctx context.Context) context.Context {
	return tflog.MaskMessageStrings(ctx)
}
