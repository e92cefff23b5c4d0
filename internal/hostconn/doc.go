// Package hostconn holds the connection settings that the provider, its
// resources and its data sources share: the ssh {} block schema (one
// definition rendered into each of the framework's three schema flavours),
// its Terraform model, and the merge of a resource's ssh {} block over the
// provider's defaults into a remote.Config.
//
// The provider's values may be unknown while planning (they often come from
// other resources); nothing here fails on an unknown value until a
// connection is actually needed.
package hostconn
