// Package codegen stands in for github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3/codegen
// when flightdeck builds a Terraform-bridged resource plugin (see ../../README.md).
//
// Only the bridge's schema generator (pulumi-terraform-bridge/v3/pkg/tfgen) imports the real
// package; a provider serving requests never runs that code. The Go module proxy reachable here
// does not serve the real module, so this one provides exactly the names tfgen references: the
// C# language-info structs (same JSON shape as upstream's) and a GenerateProgram that refuses.
package codegen

import (
	"errors"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/pulumi/pkg/v3/codegen/pcl"
)

// CSharpPackageInfo mirrors upstream's package-level C# options.
type CSharpPackageInfo struct {
	PackageReferences            map[string]string `json:"packageReferences,omitempty"`
	Namespaces                   map[string]string `json:"namespaces,omitempty"`
	Compatibility                string            `json:"compatibility,omitempty"`
	DictionaryConstructors       bool              `json:"dictionaryConstructors,omitempty"`
	ProjectReferences            []string          `json:"projectReferences,omitempty"`
	RootNamespace                string            `json:"rootNamespace,omitempty"`
	LiftSingleValueMethodReturns bool              `json:"liftSingleValueMethodReturns,omitempty"`
	RespectSchemaVersion         bool              `json:"respectSchemaVersion,omitempty"`
}

// CSharpPropertyInfo mirrors upstream's per-property C# options.
type CSharpPropertyInfo struct {
	Name string `json:"name,omitempty"`
}

// CSharpResourceInfo mirrors upstream's per-resource C# options.
type CSharpResourceInfo struct {
	Name string `json:"name,omitempty"`
}

// GenerateProgram is never called by a serving provider; it refuses if anything tries.
func GenerateProgram(*pcl.Program) (map[string][]byte, hcl.Diagnostics, error) {
	return nil, nil, errors.New("C# program generation is not available in flightdeck's build-only stand-in")
}
