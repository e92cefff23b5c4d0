package connection

import (
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The one rule by which a resource's ssh, bmc or kubernetes settings are
// merged over the provider's blocks of the same name: a value set in the
// resource wins, else the provider's, else the built-in default. A value is
// set when it is known (neither null nor unknown) and, for a string, not
// empty. Every merge of the provider (Resolve for ssh, BMCConfig for bmc,
// KubeAccess for kubernetes) goes through these functions.

// String is the resource's string over the provider's over fallback.
func String(own, def types.String, fallback string) string {
	switch {
	case setString(own):
		return own.ValueString()
	case setString(def):
		return def.ValueString()
	}
	return fallback
}

// Bool is the resource's bool over the provider's over false.
func Bool(own, def types.Bool) bool {
	switch {
	case known(own):
		return own.ValueBool()
	case known(def):
		return def.ValueBool()
	}
	return false
}

// Int64 is the resource's number over the provider's over fallback.
func Int64(own, def types.Int64, fallback int64) int64 {
	switch {
	case known(own):
		return own.ValueInt64()
	case known(def):
		return def.ValueInt64()
	}
	return fallback
}

// Duration is the resource's duration over the provider's over fallback;
// a value that is not a positive duration (the schemas' validators refuse
// one) counts as not set.
func Duration(own, def types.String, fallback time.Duration) time.Duration {
	for _, v := range []types.String{own, def} {
		if !setString(v) {
			continue
		}
		if d, err := time.ParseDuration(v.ValueString()); err == nil && d > 0 {
			return d
		}
	}
	return fallback
}

func setString(v types.String) bool { return known(v) && v.ValueString() != "" }

// known reports whether v holds a usable value (set and known).
func known(v interface {
	IsNull() bool
	IsUnknown() bool
}) bool {
	return !v.IsNull() && !v.IsUnknown()
}
