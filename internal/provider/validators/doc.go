// Package validators holds the provider's own framework validators, one
// constructor each, so that every resource, data source and the provider's
// blocks check the same kind of value the same way.
package validators
