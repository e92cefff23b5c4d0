// Command terraform-provider-homelab serves the homelab provider to
// Terraform and OpenTofu over plugin protocol version 6.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider"
)

// version is set by goreleaser at release time.
var version = "dev"

// Address is the provider's registry address.
const Address = "registry.terraform.io/terraform-homelab/homelab"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider in debug mode, for debuggers such as delve; prints TF_REATTACH_PROVIDERS")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: Address,
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
