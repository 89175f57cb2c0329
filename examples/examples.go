// Package examples embeds the example job files, so `riffle quickstart`
// runs them on a machine with nothing but the binary.
package examples

import "embed"

// Jobs holds the *.yaml job files of this directory.
//
//go:embed *.yaml
var Jobs embed.FS
