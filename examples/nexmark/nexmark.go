// Package nexmark embeds the Nexmark queries as job files (q0.yaml ...),
// each reading the generator (a nexmark: source), so `riffle bench
// nexmark` runs them from the binary alone.
package nexmark

import "embed"

// Queries holds the q*.yaml job files of this directory.
//
//go:embed q*.yaml
var Queries embed.FS
