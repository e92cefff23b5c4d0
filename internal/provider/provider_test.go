package provider_test

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"

	homelab "github.com/terraform-homelab/terraform-provider-homelab/internal/provider"
)

type described interface{ GetDescription() string }

// Every attribute and block of every schema carries a description: the docs
// are generated from them.
func TestEverySchemaElementIsDescribed(t *testing.T) {
	ctx := context.Background()
	p := homelab.New("test")()

	var presp provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &presp)
	checkProvider(t, "provider", presp.Schema.Attributes, presp.Schema.Blocks)

	for _, f := range p.DataSources(ctx) {
		ds := f()
		var m datasource.MetadataResponse
		ds.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: homelab.TypeName}, &m)
		var s datasource.SchemaResponse
		ds.Schema(ctx, datasource.SchemaRequest{}, &s)
		if s.Diagnostics.HasError() || s.Schema.Description == "" {
			t.Errorf("%s: schema without description or with errors: %v", m.TypeName, s.Diagnostics)
		}
		checkDataSource(t, m.TypeName, s.Schema.Attributes, s.Schema.Blocks)
	}
	for _, f := range p.Resources(ctx) {
		r := f()
		var m resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: homelab.TypeName}, &m)
		var s resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &s)
		if s.Diagnostics.HasError() || s.Schema.Description == "" {
			t.Errorf("%s: schema without description or with errors: %v", m.TypeName, s.Diagnostics)
		}
		checkResource(t, m.TypeName, s.Schema.Attributes, s.Schema.Blocks)
	}
}

func need(t *testing.T, where string, d described) {
	t.Helper()
	if d.GetDescription() == "" {
		t.Errorf("%s has no description", where)
	}
}

func checkProvider(t *testing.T, at string, attrs map[string]pschema.Attribute, blocks map[string]pschema.Block) {
	for n, a := range attrs {
		need(t, at+"."+n, a)
	}
	for n, b := range blocks {
		need(t, at+"."+n, b)
		if nb, ok := b.(pschema.SingleNestedBlock); ok {
			checkProvider(t, at+"."+n, nb.Attributes, nb.Blocks)
		}
	}
}

func checkDataSource(t *testing.T, at string, attrs map[string]dschema.Attribute, blocks map[string]dschema.Block) {
	for n, a := range attrs {
		need(t, at+"."+n, a)
	}
	for n, b := range blocks {
		need(t, at+"."+n, b)
		if nb, ok := b.(dschema.SingleNestedBlock); ok {
			checkDataSource(t, at+"."+n, nb.Attributes, nb.Blocks)
		}
	}
}

func checkResource(t *testing.T, at string, attrs map[string]rschema.Attribute, blocks map[string]rschema.Block) {
	for n, a := range attrs {
		need(t, at+"."+n, a)
	}
	for n, b := range blocks {
		need(t, at+"."+n, b)
		switch nb := b.(type) {
		case rschema.SingleNestedBlock:
			checkResource(t, at+"."+n, nb.Attributes, nb.Blocks)
		case rschema.ListNestedBlock:
			checkResource(t, at+"."+n, nb.NestedObject.Attributes, nb.NestedObject.Blocks)
		}
	}
	for n, a := range attrs {
		if na, ok := a.(rschema.ListNestedAttribute); ok {
			checkResource(t, at+"."+n, na.NestedObject.Attributes, nil)
		}
	}
}

// The provider's own configuration must validate with the framework's
// internal checks (e.g. no conflicting attribute names).
func TestProviderSchemaIsValid(t *testing.T) {
	var resp provider.SchemaResponse
	homelab.New("test")().Schema(context.Background(), provider.SchemaRequest{}, &resp)
	if diags := resp.Schema.ValidateImplementation(context.Background()); diags.HasError() {
		t.Fatal(diags)
	}
}
