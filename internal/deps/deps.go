//go:build tools

// Package deps pins the modules riffle's packages are built from, so that
// `go mod tidy` keeps them while packages land one by one.
package deps

import (
	_ "github.com/apache/arrow-go/v18/arrow/compute"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/cockroachdb/pebble"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "gonum.org/v1/gonum/mat"
	_ "gopkg.in/yaml.v3"
)
