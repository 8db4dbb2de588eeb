// Package codegen stands in for github.com/pulumi/pulumi-yaml/pkg/pulumiyaml/codegen when
// flightdeck builds a Terraform-bridged resource plugin (see ../../../../README.md).
//
// Only the bridge's schema generator (pulumi-terraform-bridge/v3/pkg/tfgen) imports the real
// package, for converting example programs to YAML; a provider serving requests never runs that
// code. The proxy serves no pulumi-yaml version that compiles against the bridge's pkg/v3, so
// this one provides the single name tfgen references, and refuses if it is ever called.
package codegen

import (
	"errors"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/pulumi/pkg/v3/codegen/pcl"
)

// GenerateProgram is never called by a serving provider; it refuses if anything tries.
func GenerateProgram(*pcl.Program) (map[string][]byte, hcl.Diagnostics, error) {
	return nil, nil, errors.New("YAML program generation is not available in flightdeck's build-only stand-in")
}
